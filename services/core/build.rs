// `sqlx::migrate!` embeds the migration files at compile time; without this, a new file in
// migrations/ would not rebuild the crate and would be silently missing from the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
