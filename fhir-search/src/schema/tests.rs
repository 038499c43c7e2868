//! The names of [`super`] against the migrations: every table and column named there is one
//! the migrations create, and every table they create is named there.
//!
//! The migrations are read from the folder (in version order, as sqlx applies them), so a new
//! one is checked without being listed, and their `CREATE TABLE`, `ALTER TABLE` and
//! `DROP TABLE` statements are replayed into a map of tables and columns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{HISTORY, TABLES, TWINS};

type Tables = BTreeMap<String, BTreeSet<String>>;

/// The tables and columns the migrations leave.
fn migrated() -> Tables {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {}", folder.display());
    let mut tables = Tables::new();
    for file in files {
        let sql = std::fs::read_to_string(&file).unwrap();
        for statement in statements(&sql) {
            replay(&mut tables, &statement);
        }
    }
    tables
}

/// The statements of a migration, without comments and dollar-quoted bodies (functions and
/// `DO` blocks create no tables), lower-cased, whitespace collapsed.
fn statements(sql: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = sql;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else if let Some(after) = rest.strip_prefix("$$") {
            rest = after.find("$$").map_or("", |end| &after[end + 2..]);
            text.push_str(" $$ ");
        } else {
            let ch = rest.chars().next().unwrap();
            text.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    text.split(';')
        .map(|statement| {
            statement
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .filter(|statement| !statement.is_empty())
        .collect()
}

/// Splits on commas outside parentheses.
fn top_level_items(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(text[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(text[start..].trim());
    items
}

/// Skips the words at the front that are among `optional`.
fn skip_words<'a>(
    words: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
    optional: &[&str],
) {
    while words.next_if(|word| optional.contains(word)).is_some() {}
}

fn replay(tables: &mut Tables, statement: &str) {
    if let Some(rest) = statement
        .strip_prefix("create table ")
        .or_else(|| statement.strip_prefix("create unlogged table "))
    {
        let rest = rest.strip_prefix("if not exists ").unwrap_or(rest);
        let (name, body) = rest.split_once('(').expect("CREATE TABLE without columns");
        let body = body.rsplit_once(')').expect("CREATE TABLE without ')'").0;
        let constraints = [
            "constraint",
            "unique",
            "primary",
            "check",
            "foreign",
            "exclude",
            "like",
        ];
        let items = top_level_items(body);
        // `LIKE <table>` copies that table's columns.
        let copied: BTreeSet<String> = items
            .iter()
            .filter_map(|item| item.strip_prefix("like "))
            .filter_map(|like| like.split_whitespace().next())
            .flat_map(|source| tables.get(source).cloned().unwrap_or_default())
            .collect();
        let columns = items
            .into_iter()
            .filter_map(|item| item.split_whitespace().next())
            .filter(|word| !constraints.contains(word))
            .map(str::to_owned)
            .chain(copied)
            .collect();
        tables.insert(name.trim().to_owned(), columns);
    } else if let Some(rest) = statement.strip_prefix("drop table ") {
        let rest = rest.strip_prefix("if exists ").unwrap_or(rest);
        for name in rest.split(',') {
            let name = name.split_whitespace().next().unwrap_or_default();
            tables.remove(name);
        }
    } else if let Some(rest) = statement.strip_prefix("alter table ") {
        let mut words = rest.split(' ').peekable();
        skip_words(&mut words, &["if", "exists", "only"]);
        let name = words.next().unwrap_or_default().to_owned();
        let actions = words.collect::<Vec<_>>().join(" ");
        if let Some(new_name) = actions.strip_prefix("rename to ") {
            let columns = tables.remove(&name).unwrap_or_default();
            tables.insert(new_name.trim().to_owned(), columns);
            return;
        }
        let columns = tables
            .get_mut(&name)
            .unwrap_or_else(|| panic!("ALTER TABLE of {name}, which no migration creates"));
        for action in top_level_items(&actions) {
            let mut words = action.split(' ').peekable();
            match words.next() {
                Some("add") => {
                    let constraint = ["constraint", "primary", "unique", "check", "foreign"];
                    if words.peek().is_some_and(|word| constraint.contains(word)) {
                        continue;
                    }
                    skip_words(&mut words, &["column", "if", "not", "exists"]);
                    columns.insert(words.next().unwrap_or_default().to_owned());
                }
                Some("drop") => {
                    if words.peek() == Some(&"constraint") {
                        continue;
                    }
                    skip_words(&mut words, &["column", "if", "exists"]);
                    columns.remove(words.next().unwrap_or_default());
                }
                Some("rename") => {
                    if words.peek() == Some(&"constraint") {
                        continue;
                    }
                    skip_words(&mut words, &["column"]);
                    let old = words.next().unwrap_or_default().to_owned();
                    assert_eq!(words.next(), Some("to"), "cannot read `{action}`");
                    let new = words.next().unwrap_or_default().to_owned();
                    columns.remove(&old);
                    columns.insert(new);
                }
                _ => {}
            }
        }
    }
}

#[test]
fn every_named_column_is_in_its_table() {
    let migrated = migrated();
    for (table, columns) in TABLES.iter().chain(TWINS) {
        let Some(existing) = migrated.get(*table) else {
            panic!("the migrations create no table {table}");
        };
        for column in *columns {
            assert!(
                existing.contains(*column),
                "{table} has no column {column} (it has {existing:?})"
            );
        }
    }
}

#[test]
fn every_migrated_table_is_named() {
    let named: BTreeSet<&str> = TABLES
        .iter()
        .chain(TWINS)
        .map(|(table, _)| *table)
        .collect();
    for table in migrated().keys() {
        assert!(
            named.contains(table.as_str()),
            "the migrations create {table}, which the schema module does not name"
        );
    }
}

#[test]
fn every_twin_has_its_tables_columns() {
    let migrated = migrated();
    for (table, twin) in HISTORY {
        assert_eq!(
            migrated.get(*table),
            migrated.get(*twin),
            "{twin} must have the columns of {table}"
        );
    }
}

#[test]
fn the_reader_follows_renames_and_additions() {
    let mut tables = Tables::new();
    let sql = "-- a comment; with a semicolon\n\
               CREATE TABLE t (a bigint PRIMARY KEY, b numeric(10, 2), UNIQUE (a, b));\n\
               CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN CREATE TABLE u (x int); END $$;\n\
               ALTER TABLE t ADD COLUMN c oid, ADD d text, ADD CONSTRAINT k CHECK (a > 0), ADD PRIMARY KEY (a);\n\
               ALTER TABLE IF EXISTS t RENAME COLUMN b TO e;\n\
               ALTER TABLE t DROP COLUMN IF EXISTS a;\n\
               CREATE TABLE v (LIKE t INCLUDING ALL);";
    for statement in statements(sql) {
        replay(&mut tables, &statement);
    }
    let expected: BTreeSet<String> = ["c", "d", "e"].map(str::to_owned).into();
    assert_eq!(tables.get("t"), Some(&expected));
    assert_eq!(tables.get("v"), Some(&expected));
    assert_eq!(tables.len(), 2);
}
