//! Builds the web console (`console/` at the repository root) with npm and embeds it: runs
//! `npm ci` when `console/node_modules` is missing or `package-lock.json` changed since the last
//! install (a stamp in node_modules), then `npm run build` into `$OUT_DIR/dist`, and writes
//! `$OUT_DIR/assets.rs`: one entry per built file (bytes by `include_bytes!`, Content-Type,
//! ETag, a gzip copy of text files, and whether the name carries a content hash).
//!
//! `HOURGLASS_CONSOLE_DIST=/path/to/dist` embeds an already built console instead (no npm).
//! Without Node.js/npm, or when the build fails, the build stops with a message that says what
//! to install: a binary without its console is never built silently.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/content_type.rs"]
mod content_type;

const STAMP: &str = ".hourglass-npm-ci.stamp";

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env("OUT_DIR"));
    let console = manifest.join("../../console");
    println!("cargo:rerun-if-env-changed=HOURGLASS_CONSOLE_DIST");
    let dist = match std::env::var_os("HOURGLASS_CONSOLE_DIST").filter(|v| !v.is_empty()) {
        Some(prebuilt) => {
            let dist = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", dist.display());
            dist
        }
        None => {
            for input in [
                "src",
                "public",
                "index.html",
                "package.json",
                "package-lock.json",
                "vite.config.js",
            ] {
                println!("cargo:rerun-if-changed={}", console.join(input).display());
            }
            build_with_npm(&console, &out.join("dist"))
        }
    };
    if !dist.join("index.html").is_file() {
        fail(&format!(
            "{} has no index.html: not a build of the console (npm run build in console/)",
            dist.display()
        ));
    }
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    write_assets(&out, &dist, &files);
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("{name} is not set (run by cargo)")))
}

fn fail(message: &str) -> ! {
    panic!(
        "\n\nhourglass-console: {message}\n\n\
         The web console is built with Node.js (20.19 or newer) and npm at compile time: install \
         them (Debian: apt-get install nodejs npm; or https://nodejs.org), or point \
         HOURGLASS_CONSOLE_DIST at a console built beforehand (`npm ci && npm run build` in \
         console/, then HOURGLASS_CONSOLE_DIST=$PWD/console/dist). See README.md, \"Console\".\n\n"
    )
}

fn npm() -> Command {
    Command::new(if cfg!(windows) { "npm.cmd" } else { "npm" })
}

/// Runs npm (`args` in `dir`), failing the build with its output when it fails.
fn run_npm(dir: &Path, args: &[&str]) {
    let output = npm()
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run `npm {}`: {e}", args.join(" "))));
    if !output.status.success() {
        fail(&format!(
            "`npm {}` in {} failed ({}):\n{}\n{}",
            args.join(" "),
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
}

fn build_with_npm(console: &Path, dist: &Path) -> PathBuf {
    let lock_path = console.join("package-lock.json");
    let lock = std::fs::read(&lock_path)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", lock_path.display())));
    match npm().arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => fail(&format!(
            "`npm --version` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => fail(&format!("npm is not installed (or not on PATH): {e}")),
    }
    let modules = console.join("node_modules");
    let stamp = modules.join(STAMP);
    let want = format!("{:016x}", fnv1a(&lock));
    let have = std::fs::read_to_string(&stamp).unwrap_or_default();
    if !modules.is_dir() || have.trim() != want {
        run_npm(
            console,
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        );
        std::fs::write(&stamp, &want)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", stamp.display())));
    }
    let dist_arg = dist.to_string_lossy();
    run_npm(
        console,
        &[
            "run",
            "build",
            "--silent",
            "--",
            "--outDir",
            &dist_arg,
            "--emptyOutDir",
            "--logLevel",
            "error",
        ],
    );
    dist.to_path_buf()
}

/// FNV-1a, 64 bits: the stamp of package-lock.json and the ETag of a file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", dir.display())));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", dir.display())))
            .path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Every file Vite writes under assets/ carries its content hash in its name
/// (`console/vite.config.js` sets the patterns): those never change content. The name cannot be
/// parsed for the hash instead: Vite's hashes are base64url and may hold `-` themselves
/// (`index-BCX911-L.js`).
fn hashed(path: &str) -> bool {
    path.starts_with("assets/")
}

fn write_assets(out: &Path, dist: &Path, files: &[String]) {
    let gz_dir = out.join("gz");
    std::fs::create_dir_all(&gz_dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", gz_dir.display())));
    let mut code = String::from("&[\n");
    for (i, rel) in files.iter().enumerate() {
        let path = dist.join(rel);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
        let content_type = content_type::content_type_for(rel);
        let mut gzip = "None".to_string();
        if content_type::compressible(content_type) && bytes.len() > 512 {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder
                .write_all(&bytes)
                .unwrap_or_else(|e| fail(&format!("gzip of {rel}: {e}")));
            let compressed = encoder
                .finish()
                .unwrap_or_else(|e| fail(&format!("gzip of {rel}: {e}")));
            if compressed.len() < bytes.len() * 9 / 10 {
                let gz_path = gz_dir.join(format!("{i}.gz"));
                std::fs::write(&gz_path, &compressed)
                    .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", gz_path.display())));
                gzip = format!("Some(include_bytes!({:?}))", gz_path.to_string_lossy());
            }
        }
        code.push_str(&format!(
            "    Asset {{ path: {rel:?}, bytes: include_bytes!({:?}), gzip: {gzip}, \
             content_type: {content_type:?}, etag: \"\\\"{:016x}\\\"\", immutable: {} }},\n",
            path.to_string_lossy(),
            fnv1a(&bytes),
            hashed(rel),
        ));
    }
    code.push(']');
    let target = out.join("assets.rs");
    std::fs::write(&target, code)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", target.display())));
}
