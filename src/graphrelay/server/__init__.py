"""The run engine, no HTTP: thread and run records and their store, a run's status machine,
streaming, the executor, automatic resumes, replicas (leases, takeover), completion webhooks."""
