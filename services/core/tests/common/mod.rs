//! What the storage test files share.
//!
//! The macro expects `Database`, `Path`, `TestMySql` and `sqlite_settings` in scope where it
//! is used.

/// Declares one `#[tokio::test]` per check and backend: `sqlite::check_x` and `mysql::check_x`.
macro_rules! on_both_backends {
    ($($check:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let dir = tempfile::tempdir().expect("a temporary directory");
                    let db = super::Database::connect(&super::sqlite_settings(dir.path()), dir.path())
                        .await
                        .expect("the SQLite database opens");
                    super::$check(&db).await;
                    db.close().await;
                }
            )+
        }

        mod mysql {
            $(
                #[tokio::test]
                async fn $check() {
                    let test_db = super::TestMySql::create().await.expect("a fresh MySQL database");
                    let db = super::Database::connect(&test_db.settings(), super::Path::new("unused"))
                        .await
                        .expect("the MySQL database opens");
                    // Run the check in its own task so the database is dropped even when it panics.
                    let outcome = tokio::spawn({
                        let db = db.clone();
                        async move { super::$check(&db).await }
                    })
                    .await;
                    db.close().await;
                    test_db.drop_database().await.expect("the test database is dropped");
                    if let Err(err) = outcome {
                        std::panic::resume_unwind(err.into_panic());
                    }
                }
            )+
        }
    };
}
