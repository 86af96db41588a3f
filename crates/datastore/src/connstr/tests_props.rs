//! Properties: credentials survive translation, redaction and errors never reveal a password,
//! and no input makes the translator or the redactor panic.

use proptest::prelude::*;

use super::{ConnEngine, encode_component, redact, to_url};

/// Quotes a libpq value: backslash before `\` and `'`, then single quotes around it.
fn quote_kv(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Decodes a URL component the way sqlx does.
fn decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// User name, password and database name as sqlx will read them back from `url`.
fn credentials(url: &str) -> (String, Option<String>, String) {
    let url = url::Url::parse(url).unwrap();
    let db = url
        .query_pairs()
        .find(|(k, _)| k == "dbname")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| decoded(url.path().trim_start_matches('/')));
    (decoded(url.username()), url.password().map(decoded), db)
}

/// What the translation must preserve: an empty password means "no password".
fn expected(user: &str, password: &str, db: &str) -> (String, Option<String>, String) {
    (
        user.to_owned(),
        Some(password.to_owned()).filter(|p| !p.is_empty()),
        db.to_owned(),
    )
}

/// The four forms, each holding `user`, `password` and `db`.
fn forms(user: &str, password: &str, db: &str) -> [(ConnEngine, String); 4] {
    [
        (
            ConnEngine::Postgres,
            format!(
                "host=db.example user={} password={} dbname={}",
                quote_kv(user),
                quote_kv(password),
                quote_kv(db)
            ),
        ),
        (
            ConnEngine::Postgres,
            format!(
                "postgresql://{}:{}@db.example:5432/{}",
                encode_component(user),
                encode_component(password),
                encode_component(db)
            ),
        ),
        (
            ConnEngine::Mysql,
            format!(
                "{user}:{password}@tcp(db.example:3306)/{}?parseTime=true",
                encode_component(db)
            ),
        ),
        (
            ConnEngine::Mysql,
            format!(
                "mysql://{}:{}@db.example/{}",
                encode_component(user),
                encode_component(password),
                encode_component(db)
            ),
        ),
    ]
}

/// A password drawn from characters that never occur in error-message text, so any four of
/// them in a row in a message can only have come from the password.
fn marked_password() -> impl Strategy<Value = String> {
    ("[XZ0-9]{4,8}", "[#$!~^@:/?&=' ]{0,3}", "[XZ0-9]{4,8}").prop_map(|(a, b, c)| a + &b + &c)
}

/// A single-character edit that can break any of the grammars.
fn mutation() -> impl Strategy<Value = (usize, Option<char>)> {
    let specials = vec![
        ' ', '\'', '\\', '=', '/', '@', ':', '?', '&', '(', ')', '#', '%', '[',
    ];
    (
        any::<usize>(),
        proptest::option::of(proptest::sample::select(specials)),
    )
}

fn mutate(s: &str, (at, insert): (usize, Option<char>)) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let at = at % (chars.len() + 1);
    match insert {
        Some(c) => chars.insert(at, c),
        None if at < chars.len() => {
            chars.remove(at);
        }
        None => {}
    }
    chars.into_iter().collect()
}

/// Whether `message` holds four consecutive characters of `password`.
fn leaks(message: &str, password: &str) -> bool {
    let p: Vec<char> = password.chars().collect();
    p.windows(4).any(|w| {
        let w: String = w.iter().collect();
        w.chars().filter(|c| c.is_ascii_alphanumeric()).count() >= 3
            && w.contains(['X', 'Z'])
            && message.contains(&w)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn credentials_survive_every_form(
        user in any::<String>(),
        password in any::<String>(),
        db in any::<String>(),
    ) {
        for (i, (engine, s)) in forms(&user, &password, &db).into_iter().enumerate() {
            // go-sql-driver splits the user name at its first ':'; such names cannot be written.
            let url_form = i == 1 || i == 3;
            if engine == ConnEngine::Mysql && !url_form && user.contains(':') {
                continue;
            }
            // URL parsers drop `.` and `..` path segments; MySQL has no other place for them.
            if (url_form || engine == ConnEngine::Mysql) && (db == "." || db == "..") {
                continue;
            }
            let url = to_url(engine, &s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
            prop_assert_eq!(credentials(&url), expected(&user, &password, &db), "{} -> {}", s, url);
        }
    }

    #[test]
    fn translation_is_idempotent(
        user in "[^:]*",
        password in any::<String>(),
        db in any::<String>().prop_filter("dot segment", |d| d != "." && d != ".."),
    ) {
        for (engine, s) in forms(&user, &password, &db) {
            let once = to_url(engine, &s).unwrap();
            prop_assert_eq!(to_url(engine, &once).unwrap(), once.clone());
        }
    }

    #[test]
    fn redact_never_leaves_the_password(
        user in "[a-z]{1,8}",
        password in "[^*]{6,24}",
        db in "[a-z]{1,8}",
    ) {
        let encoded = encode_component(&password);
        let without: String = forms(&user, "", &db).map(|(_, s)| s).concat();
        prop_assume!(!without.contains(&password) && !without.contains(&encoded));
        for (_, s) in forms(&user, &password, &db) {
            let out = redact(&s);
            prop_assert!(!out.contains(&password), "{:?} -> {:?}", s, out);
            prop_assert!(!out.contains(&encoded), "{:?} -> {:?}", s, out);
        }
    }

    #[test]
    fn redact_hides_unquoted_libpq_password(password in "[A-Za-z0-9!#$%&()*+,-./:;<>?@^_~]{6,24}") {
        // The pair after an unquoted password may be its tail, so it is hidden too.
        let s = format!("host=h password={password} dbname=d");
        prop_assert_eq!(redact(&s), "host=h password=*** ***");
        let s = format!("password={password}");
        prop_assert_eq!(redact(&s), "password=***");
    }

    #[test]
    fn errors_never_show_the_password(
        password in marked_password(),
        edits in proptest::collection::vec(mutation(), 1..4),
    ) {
        for (engine, s) in forms("spire", &password, "spire") {
            let s = edits.iter().fold(s, |s, edit| mutate(&s, *edit));
            if let Err(e) = to_url(engine, &s) {
                let message = e.to_string();
                prop_assert!(!leaks(&message, &password), "{:?} -> {}", s, message);
                prop_assert!(!leaks(&format!("{e:?}"), &password), "{:?} -> {:?}", s, e);
            }
        }
    }

    #[test]
    fn translator_and_redactor_never_panic(s in any::<String>()) {
        let _ = to_url(ConnEngine::Postgres, &s);
        let _ = to_url(ConnEngine::Mysql, &s);
        let _ = redact(&s);
    }

    #[test]
    fn grammar_shaped_input_never_panics(s in "[a-z=' \\\\/@:?&()%#\\[\\]0-9.,+-]{0,48}") {
        for prefix in ["", "postgres://", "mysql://", "host=h "] {
            let s = format!("{prefix}{s}");
            if let Ok(url) = to_url(ConnEngine::Postgres, &s) {
                prop_assert!(url::Url::parse(&url).is_ok());
            }
            if let Ok(url) = to_url(ConnEngine::Mysql, &s) {
                prop_assert!(url::Url::parse(&url).is_ok());
            }
            let _ = redact(&s);
        }
    }
}
