//! Which file a request path names, with NGINX `root` semantics: the whole path maps under the
//! site's root.
//!
//! [`RequestPath::parse`] is pure: it percent-decodes each segment and refuses anything that could
//! step out of the root (`..`, `.`, encoded slashes or backslashes, NUL) instead of normalizing
//! it, because a browser never sends those and a tolerant decoder is where traversals hide.
//! [`resolve`] then asks the file system, and refuses symlinks that lead outside the root by
//! comparing canonical paths.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

/// A request path that is safe to join onto a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    /// Decoded, non-empty segments; none is `.` or `..` or contains `/`, `\` or NUL.
    segments: Vec<String>,
    /// The path ended with `/`: it names a directory.
    directory: bool,
}

impl RequestPath {
    /// Decodes the path of a request URI (without the query); `None` refuses it.
    pub fn parse(raw: &str) -> Option<RequestPath> {
        let rest = raw.strip_prefix('/')?;
        let mut segments = Vec::new();
        // Empty segments (`//`) are merged away, as NGINX's merge_slashes does.
        for raw_segment in rest.split('/').filter(|segment| !segment.is_empty()) {
            let segment = percent_decode(raw_segment)?;
            let unsafe_char = segment.contains(['/', '\\', '\0']);
            if unsafe_char || segment == "." || segment == ".." {
                return None;
            }
            segments.push(segment);
        }
        Some(RequestPath {
            directory: raw.ends_with('/'),
            segments,
        })
    }

    /// The decoded path, slashes merged: what `cache_control` prefixes are matched against.
    pub fn normalized(&self) -> String {
        let mut path = String::from("/");
        path.push_str(&self.segments.join("/"));
        if self.directory && !self.segments.is_empty() {
            path.push('/');
        }
        path
    }

    fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(&self.segments);
        path
    }
}

/// `%XX` escapes to bytes, and the bytes must be UTF-8; a malformed escape refuses the segment.
fn percent_decode(segment: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(segment.len());
    let mut input = segment.bytes();
    while let Some(byte) = input.next() {
        if byte == b'%' {
            let high = hex_value(input.next()?)?;
            let low = hex_value(input.next()?)?;
            bytes.push(high << 4 | low);
        } else {
            bytes.push(byte);
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// What a request path turned out to name.
#[derive(Debug)]
pub enum Resolved {
    /// A regular file inside the root, by its canonical path.
    File {
        path: PathBuf,
        metadata: Metadata,
    },
    /// A directory asked for without the trailing slash.
    AddSlash,
    NotFound,
}

/// Looks `request` up under `root` (canonical), serving `index` for directories.
pub async fn resolve(root: &Path, index: &str, request: &RequestPath) -> Resolved {
    let Some((path, metadata)) = inside(root, &request.under(root)).await else {
        return Resolved::NotFound;
    };
    if metadata.is_file() {
        // `/style.css/` names a directory that does not exist.
        return if request.directory {
            Resolved::NotFound
        } else {
            Resolved::File { path, metadata }
        };
    }
    if !metadata.is_dir() {
        // Sockets, FIFOs and devices are never served: opening a FIFO would block.
        return Resolved::NotFound;
    }
    if !request.directory {
        return Resolved::AddSlash;
    }
    match inside(root, &path.join(index)).await {
        Some((path, metadata)) if metadata.is_file() => Resolved::File { path, metadata },
        _ => Resolved::NotFound,
    }
}

/// The canonical path and metadata of `candidate` if it exists and, symlinks followed, is still
/// under `root`.
async fn inside(root: &Path, candidate: &Path) -> Option<(PathBuf, Metadata)> {
    let canonical = tokio::fs::canonicalize(candidate).await.ok()?;
    if !canonical.starts_with(root) {
        return None;
    }
    let metadata = tokio::fs::metadata(&canonical).await.ok()?;
    Some((canonical, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(raw: &str) -> Option<Vec<String>> {
        RequestPath::parse(raw).map(|path| path.segments)
    }

    #[test]
    fn parse_decodes_and_refuses_what_could_leave_the_root() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("/", Some(&[])),
            ("/index.html", Some(&["index.html"])),
            ("/assets/app.js", Some(&["assets", "app.js"])),
            ("//assets///app.js", Some(&["assets", "app.js"])),
            ("/a%20b.txt", Some(&["a b.txt"])),
            ("/caf%C3%A9", Some(&["café"])),
            ("/%41bc", Some(&["Abc"])),
            ("/a..b", Some(&["a..b"])),
            ("/.well-known/x", Some(&[".well-known", "x"])),
            ("/..", None),
            ("/../etc/passwd", None),
            ("/a/../../etc/passwd", None),
            ("/./index.html", None),
            ("/%2e%2e/etc/passwd", None),
            ("/%2E%2E/etc/passwd", None),
            ("/.%2e/etc/passwd", None),
            ("/..%2fetc/passwd", None),
            ("/..%2Fetc%2Fpasswd", None),
            ("/..%5cetc", None),
            ("/a\\b", None),
            ("/a%00.html", None),
            ("/a%", None),
            ("/a%4", None),
            ("/a%zz", None),
            ("/%ff", None),
            ("index.html", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            let expected = expected.map(|list| list.iter().map(|s| s.to_string()).collect());
            assert_eq!(segments(raw), expected, "{raw}");
        }
    }

    #[test]
    fn normalized_keeps_the_directory_slash() {
        let normalized = |raw| RequestPath::parse(raw).map(|path| path.normalized());
        assert_eq!(normalized("/").as_deref(), Some("/"));
        assert_eq!(normalized("//docs//").as_deref(), Some("/docs/"));
        assert_eq!(normalized("/docs").as_deref(), Some("/docs"));
        assert_eq!(
            normalized("/assets/a%20b.js").as_deref(),
            Some("/assets/a b.js")
        );
    }

    /// A site with a file, a directory with and without an index, and symlinks in and out.
    fn site() -> (tempfile::TempDir, PathBuf) {
        let outside = tempfile::tempdir().expect("temp dir");
        let root = outside.path().join("site");
        std::fs::create_dir_all(root.join("docs")).expect("docs");
        std::fs::create_dir_all(root.join("empty")).expect("empty");
        std::fs::write(root.join("index.html"), "home").expect("index");
        std::fs::write(root.join("docs/index.html"), "docs").expect("docs index");
        std::fs::write(outside.path().join("secret.txt"), "secret").expect("secret");
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("leak"))
            .expect("symlink out");
        std::os::unix::fs::symlink(outside.path(), root.join("up")).expect("symlink dir out");
        std::os::unix::fs::symlink(root.join("index.html"), root.join("home.html"))
            .expect("symlink in");
        let root = std::fs::canonicalize(root).expect("canonical root");
        (outside, root)
    }

    async fn resolved(root: &Path, raw: &str) -> String {
        let request = RequestPath::parse(raw).expect("a valid path");
        match resolve(root, "index.html", &request).await {
            Resolved::File { path, .. } => path
                .strip_prefix(root)
                .expect("inside the root")
                .display()
                .to_string(),
            Resolved::AddSlash => "add slash".to_string(),
            Resolved::NotFound => "not found".to_string(),
        }
    }

    #[tokio::test]
    async fn resolve_serves_files_and_indexes_and_refuses_escaping_symlinks() {
        let (_dir, root) = site();
        let cases = [
            ("/", "index.html"),
            ("/index.html", "index.html"),
            ("/docs/", "docs/index.html"),
            ("/docs", "add slash"),
            ("/empty/", "not found"),
            ("/index.html/", "not found"),
            ("/missing.html", "not found"),
            ("/home.html", "index.html"),
            ("/leak", "not found"),
            ("/up/secret.txt", "not found"),
            ("/up/", "not found"),
        ];
        for (raw, expected) in cases {
            assert_eq!(resolved(&root, raw).await, expected, "{raw}");
        }
    }
}
