"""SQLite adapters: the embedded profile's stores."""
