"""The study: one loop over a runner, the journal and run folder, resume and the report."""
