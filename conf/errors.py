"""Errors a user can act on. The CLI prints their message in one line, without a trace."""


class LakecastError(RuntimeError):
    """Base class: the message names what is at fault (table, column, series, file, key)."""


class SourceError(LakecastError):
    """A source file or table cannot be used at all; nothing was written."""


class SchemaDriftError(LakecastError):
    """A governed table no longer matches its expected schema."""


class MigrationError(LakecastError):
    """`lakecast migrate` cannot bring a governed table to its spec; the table is left as it was."""


class SessionError(LakecastError):
    """Spark could not start; the message says why and what to do."""


class CatalogBusyError(SessionError):
    """Another process holds the embedded Derby catalog of this lakecast home."""


class AccountingError(LakecastError):
    """Row counts do not add up: a bug, reported rather than hidden."""


class LineageError(LakecastError):
    """A job run's Delta commit cannot be found by its run id (or lacks Delta's metrics)."""


class ForgetError(LakecastError):
    """`lakecast forget` was asked wrongly or could not finish; the message never names the series id."""


class HistoryTooShortError(LakecastError):
    """The observations are too short for the step settings; the message names keys and values that fit."""


class AccuracyAlertError(LakecastError):
    """`lakecast evaluate --fail-on-alert` found the live model degraded; the message says how."""


class PromotionRefusedError(LakecastError):
    """`lakecast promote --by live` has too little shared evidence to decide; the message says what to run."""
