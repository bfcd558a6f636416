//! The README (and the guides it links, [`DOCUMENTS`]) names only what exists. In its code spans and shell code blocks, every `privca …`
//! command line must parse against the CLI's clap tree (each subcommand, each long option of
//! the command it is given to), and every config key written `section.key` (or
//! `section.key = value`) or `[section]` must be in `conf/privca.example.toml`, keys that the
//! example shows commented out included. Anywhere in the README, every repository path
//! (`conf/…`, `src/…`, `interop/…`, …) must exist; `*` and `<placeholder>` segments match any
//! entry. A renamed subcommand, option, key or file makes this test fail.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// Path prefixes that name files of this repository.
const REPO_PREFIXES: &[&str] =
    &["conf/", "interop/", "benches/", "src/", "protocols/", ".ci/", "migrations/", "tests/", "docs/"];

/// The operator documents held to the README's rule.
const DOCUMENTS: &[&str] = &["README.md", "docs/architecture.md", "docs/clm.md", "docs/cluster.md"];

/// Final segments that make `a.b` a file name, not a config key (`root.pem`, `privca.db`).
const FILE_EXTENSIONS: &[&str] =
    &["pem", "der", "crl", "csr", "key", "toml", "db", "sh", "rs", "md", "py", "json", "log", "svg", "data"];

#[test]
fn readme_names_only_commands_keys_and_paths_that_exist() {
    let root = repo_root();
    for doc in DOCUMENTS {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let problems = problems(&text, &root);
        assert!(problems.is_empty(), "{doc} names what does not exist:\n  {}", problems.join("\n  "));
    }
}

#[test]
fn the_check_catches_renamed_commands_options_keys_and_paths() {
    let root = repo_root();
    let md = "Run `privca revoke-cert --serial 1`, `privca revoke --serial 1 --why x`, \
              `privca audit check`, set `crl.full_intervall`, `[acme.validaton]` and `[acmee]`, read \
              `conf/privca.prod.toml`.\n\n```sh\nprivca est user remove dev1\n```\n";
    let found = problems(md, &root);
    for needle in [
        "revoke-cert",
        "--why",
        "audit check",
        "crl.full_intervall",
        "acme.validaton",
        "`acmee`",
        "conf/privca.prod.toml",
        "remove",
    ] {
        assert!(found.iter().any(|p| p.contains(needle)), "`{needle}` not reported: {found:?}");
    }
    let fine = "`privca revoke --serial 1 --reason keyCompromise`, `privca --config c.toml list --json`, \
                `privca est user add dev1 --label=router`, `privca <command> --help`, \
                `acme.validation.deny_ranges`, `scep.names.<name>`, `[[issuer]]`, `hsm.so_pin`, \
                `database.url = \"postgres://h/db\"`, `var/root.pem`, `conf/profiles/*.toml`, \
                `protocols/*/README.md`, `src/adapters/`.";
    assert_eq!(problems(fine, &root), Vec::<String>::new());
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Everything `md` names that does not exist, one line each.
fn problems(md: &str, root: &Path) -> Vec<String> {
    let (spans, blocks) = code(md);
    let mut found = Vec::new();
    for line in spans.iter().chain(&blocks) {
        for command in privca_commands(line) {
            if let Err(e) = check_command(&command) {
                found.push(format!("`privca {}`: {e}", command.join(" ")));
            }
        }
    }
    let example = example_config(root);
    for span in &spans {
        if let Some(key) = config_key(span, &example) {
            if !resolves(&example, &key) {
                found.push(format!("config key `{}` is not in conf/privca.example.toml", key.join(".")));
            }
        }
    }
    for path in repo_paths(md) {
        if !path_exists(root, &path) {
            found.push(format!("path `{path}` does not exist"));
        }
    }
    found
}

/// The Markdown's inline code spans and the lines of its shell code blocks (fenced as `sh`,
/// `bash`, `shell` or `console`; lines ending in `\` joined with the next, comments dropped).
/// Other blocks (diagrams, TOML) are not read.
fn code(md: &str) -> (Vec<String>, Vec<String>) {
    let (mut spans, mut blocks) = (Vec::new(), Vec::new());
    let mut prose = String::new();
    // (is it a shell block, its text) while inside a fenced block.
    let mut fenced: Option<(bool, String)> = None;
    for line in md.lines() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            match fenced.take() {
                Some((true, block)) => {
                    let joined = block.replace("\\\n", " ");
                    let commands = joined.lines().filter(|l| !l.trim_start().starts_with('#'));
                    blocks.extend(commands.map(|l| l.split(" #").next().unwrap_or("").to_owned()));
                }
                Some((false, _)) => {}
                None => fenced = Some((matches!(info.trim(), "sh" | "bash" | "shell" | "console"), String::new())),
            }
            prose.push('\n');
            continue;
        }
        match &mut fenced {
            Some((_, block)) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    // A span may wrap across lines, never across paragraphs.
    for paragraph in prose.split("\n\n") {
        for (i, piece) in paragraph.split('`').enumerate() {
            if i % 2 == 1 {
                spans.push(piece.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }
    (spans, blocks)
}

/// The words after each `privca` (or `…/privca`) that starts a command in `line`, up to the
/// end of that command (`|`, `;`, `&&`, `)` or the end of the line).
fn privca_commands(line: &str) -> Vec<Vec<String>> {
    let line = line.replace("$(", " \n ").replace("&&", "\n").replace(['|', ';', ')'], "\n");
    let mut commands = Vec::new();
    for part in line.lines() {
        let words: Vec<&str> = part.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            if *word == "privca" || word.ends_with("/privca") {
                commands.push(words[i + 1..].iter().map(|w| (*w).to_owned()).collect());
            }
        }
    }
    commands
}

/// Walks `words` down the clap tree: each word before the first positional argument must be a
/// subcommand of the command reached so far, and each `--option` one of that command's.
fn check_command(words: &[String]) -> Result<(), String> {
    let mut command = privca::cli::Cli::command();
    command.build();
    let mut current = &command;
    let mut i = 0;
    while let Some(word) = words.get(i) {
        i += 1;
        if word.starts_with('<') || word.contains('…') {
            return Ok(()); // a placeholder: the rest is prose
        }
        if let Some(option) = word.strip_prefix("--") {
            let (name, inline_value) = match option.split_once('=') {
                Some((name, _)) => (name, true),
                None => (option, false),
            };
            if name == "help" || name == "version" {
                return Ok(());
            }
            let arg = current
                .get_arguments()
                .find(|a| a.get_long() == Some(name))
                .ok_or_else(|| format!("`{}` has no option `--{name}`", current.get_name()))?;
            if arg.get_action().takes_values() && !inline_value {
                i += 1;
            }
        } else if word.starts_with('-') {
            continue; // short flags: -h, -V
        } else if current.has_subcommands() {
            current = current
                .find_subcommand(word)
                .ok_or_else(|| format!("`{}` has no subcommand `{word}`", current.get_name()))?;
        }
        // Otherwise a positional argument of a leaf command.
    }
    Ok(())
}

/// `conf/privca.example.toml` with its commented-out keys and tables (`# key = value`,
/// `# [[issuer]]`) uncommented, so that documented optional keys count as existing.
fn example_config(root: &Path) -> toml::Table {
    let text = std::fs::read_to_string(root.join("conf/privca.example.toml")).unwrap();
    let uncommented: Vec<&str> = text
        .lines()
        .map(|line| match line.strip_prefix('#').map(str::trim_start) {
            Some(rest) if is_key_line(rest) || (rest.starts_with('[') && rest.ends_with(']')) => rest,
            _ => line,
        })
        .collect();
    uncommented.join("\n").parse().unwrap()
}

fn is_key_line(line: &str) -> bool {
    match line.split_once('=') {
        Some((key, value)) => {
            let key = key.trim();
            let value = value.trim_start();
            !key.is_empty()
                && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && key.starts_with(|c: char| c.is_ascii_lowercase())
                && value
                    .starts_with(|c: char| matches!(c, '"' | '[' | '{') || c.is_ascii_digit() || c == 't' || c == 'f')
        }
        None => false,
    }
}

/// The config key a code span names, split at dots: any `[a.b]` or `[[a]]`, and `a.b` or
/// `a.b = value` when `a` is one of the example's top-level tables (so `meta.profiles` or
/// `san.from_cn`, which are not privca config keys, are left alone) and the span is not a file
/// name.
fn config_key(span: &str, example: &toml::Table) -> Option<Vec<String>> {
    let span = span.trim();
    let header = span.starts_with('[') && span.ends_with(']');
    let key = if header {
        span.trim_start_matches('[').trim_end_matches(']')
    } else {
        let key = span.split('=').next().unwrap_or("").trim();
        if !key.contains('.') {
            return None;
        }
        key
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '<' | '>' | '*');
    if key.is_empty() || !key.chars().all(allowed) {
        return None;
    }
    let parts: Vec<String> = key.split('.').map(str::to_owned).collect();
    let first_is_table = matches!(example.get(&parts[0]), Some(toml::Value::Table(_) | toml::Value::Array(_)));
    let last = parts.last().map(String::as_str).unwrap_or("");
    (header || (first_is_table && !FILE_EXTENSIONS.contains(&last))).then_some(parts)
}

/// True if `path` leads somewhere in `table` (`<…>` and `*` match any key; an array of tables
/// matches if any element does).
fn resolves(table: &toml::Table, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else { return true };
    let placeholder = first == "*" || (first.starts_with('<') && first.ends_with('>'));
    let candidates: Vec<&toml::Value> =
        if placeholder { table.values().collect() } else { table.get(first.as_str()).into_iter().collect() };
    candidates.into_iter().any(|value| resolves_value(value, rest))
}

fn resolves_value(value: &toml::Value, rest: &[String]) -> bool {
    if rest.is_empty() {
        return true;
    }
    match value {
        toml::Value::Table(t) => resolves(t, rest),
        toml::Value::Array(items) => items.iter().any(|item| resolves_value(item, rest)),
        _ => false,
    }
}

/// Every repository path the Markdown names: a word starting with one of [`REPO_PREFIXES`]
/// after a space, a backtick, a bracket or a quote (so URLs do not count).
fn repo_paths(md: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (i, _) in md.char_indices() {
        let rest = &md[i..];
        let Some(prefix) = REPO_PREFIXES.iter().find(|p| rest.starts_with(**p)) else { continue };
        let before = md[..i].chars().next_back();
        if !matches!(before, None | Some(' ' | '\n' | '`' | '(' | '[' | '"' | '\'')) {
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '`' | ')' | '"' | '\'' | ',' | ';' | ']' | '|'))
            .unwrap_or(rest.len());
        // A link's `#fragment` names a heading inside the file, not a path.
        let path = rest[..end].split('#').next().unwrap_or("").trim_end_matches(['.', ':']);
        if path.len() >= prefix.len() {
            paths.push(path.to_owned());
        }
    }
    paths
}

/// True if `path` names an existing file or directory under `root`, with `*` and `<…>`
/// segments (or parts of segments) matching anything.
fn path_exists(root: &Path, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    exists_from(root, &segments)
}

fn exists_from(dir: &Path, segments: &[&str]) -> bool {
    let Some((first, rest)) = segments.split_first() else { return true };
    let pattern = wildcard(first);
    if !pattern.contains('*') {
        let next = dir.join(first);
        return next.exists() && exists_from(&next, rest);
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        matches_wildcard(&pattern, &name) && exists_from(&entry.path(), rest)
    })
}

/// `<placeholder>` → `*`.
fn wildcard(segment: &str) -> String {
    let mut out = String::new();
    let mut in_placeholder = false;
    for c in segment.chars() {
        match c {
            '<' => {
                in_placeholder = true;
                out.push('*');
            }
            '>' if in_placeholder => in_placeholder = false,
            _ if in_placeholder => {}
            _ => out.push(c),
        }
    }
    out
}

/// `*` matches any run of characters.
fn matches_wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (head.len()..=name.len()).any(|i| name.is_char_boundary(i) && matches_wildcard(tail, &name[i..]))
        }
    }
}
