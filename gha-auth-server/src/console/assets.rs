//! The console's files, embedded in the binary: the HTML shell, one script, one stylesheet and
//! the icon. No file is fetched from anywhere else.

use std::sync::LazyLock;

/// The page's script.
pub(super) const SCRIPT: &str = include_str!("console.js");
/// The page's stylesheet.
pub(super) const STYLE: &str = include_str!("console.css");
/// The page's icon.
pub(super) const ICON: &str = include_str!("icon.svg");
/// The shell, with `{{version}}` where the assets' version goes.
const SHELL: &str = include_str!("console.html");

/// A digest of the assets' content: the shell names `console.js?v=<version>`, so a browser
/// that cached an older script fetches the one that goes with the page it has.
pub(super) fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [SCRIPT, STYLE, ICON] {
            context.update(part.as_bytes());
        }
        hex::encode(&context.finish().as_ref()[..8])
    });
    &VERSION
}

/// The HTML shell, its asset links versioned.
pub(super) fn shell() -> &'static str {
    static PAGE: LazyLock<String> = LazyLock::new(|| SHELL.replace("{{version}}", version()));
    &PAGE
}
