"""One module per job: the whole data flow of a `lakecast <job>` (read -> transform -> model -> write -> record).

The job modules (jobs/) only parse options, call one function here and print its result;
tests and benchmarks call the same functions with a session of their own.
"""
