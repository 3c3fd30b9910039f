//! The relational store: MySQL/MariaDB in production, SQLite embedded.
