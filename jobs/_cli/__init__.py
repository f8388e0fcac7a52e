"""What the job modules share (options, session, printing); not a job, so not a command."""
