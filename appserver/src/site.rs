//! Where `voltfleet up` finds the drivers' website (the repository's `site/`, plain static
//! files) for the proxy to serve at `/`: `up.site_dir` when it is set, else the first of
//!
//! 1. `site` in the current directory (a checkout, as `make up` runs it);
//! 2. `../share/voltfleet/site` beside the binary (installed: `/usr/bin/voltfleet` finds
//!    `/usr/share/voltfleet/site`);
//! 3. `site` in the source tree the binary was built from (`cargo build` with any target
//!    directory);
//!
//! that holds an `index.html`.

use std::path::{Path, PathBuf};

/// The installed location of the site, relative to the directory of the binary.
pub const INSTALLED: &str = "../share/voltfleet/site";

/// The website's directory, absolute (the proxy reads relative paths from its own file's
/// directory), or `None` when there is none to serve.
pub fn find(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = configured {
        return Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../site");
    first_site(
        [
            std::env::current_dir().ok().map(|dir| dir.join("site")),
            exe_dir.map(|dir| dir.join(INSTALLED)),
            Some(source_tree),
        ]
        .into_iter()
        .flatten(),
    )
}

/// The first of `candidates` that holds an `index.html`, made absolute.
fn first_site(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates
        .into_iter()
        .find(|dir| dir.join("index.html").is_file())
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_directory_with_an_index_is_the_site() {
        let root = std::env::temp_dir().join(format!("voltfleet-site-test-{}", std::process::id()));
        let (empty, site, later) = (root.join("empty"), root.join("site"), root.join("later"));
        for dir in [&empty, &site, &later] {
            std::fs::create_dir_all(dir).expect("create dir");
        }
        std::fs::write(site.join("index.html"), "<!doctype html>").expect("write");
        std::fs::write(later.join("index.html"), "<!doctype html>").expect("write");
        let found = first_site([root.join("missing"), empty.clone(), site.clone(), later]);
        assert_eq!(
            found,
            Some(std::fs::canonicalize(&site).expect("canonical"))
        );
        assert_eq!(first_site([empty]), None);
        std::fs::remove_dir_all(&root).expect("clean up");
    }

    #[test]
    fn a_configured_directory_wins_made_absolute() {
        let configured = Path::new("/srv/www/voltfleet");
        assert_eq!(find(Some(configured)), Some(configured.to_path_buf()));
        // Unit tests run in the crate's directory: `src` is a relative path that exists.
        let relative = find(Some(Path::new("src"))).expect("configured");
        assert!(relative.is_absolute(), "{}", relative.display());
        assert!(relative.join("site.rs").is_file(), "{}", relative.display());
    }

    #[test]
    fn the_repository_site_is_found_from_the_source_tree() {
        let found = find(None).expect("the repository has site/index.html");
        assert!(found.join("index.html").is_file(), "{}", found.display());
    }
}
