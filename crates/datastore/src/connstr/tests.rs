//! Examples of each connection-string form and of each refusal.

use super::{ConnEngine, ConnStringError, redact, to_url};

fn pg(s: &str) -> Result<String, ConnStringError> {
    to_url(ConnEngine::Postgres, s)
}

fn my(s: &str) -> Result<String, ConnStringError> {
    to_url(ConnEngine::Mysql, s)
}

/// Asserts that `s` fails and that the message contains `fragment` but not `secret`.
fn refuses(result: Result<String, ConnStringError>, fragment: &str, secret: &str) {
    let message = match result {
        Ok(url) => panic!("expected an error containing {fragment:?}, got URL {url}"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    assert!(!message.contains(secret), "{message:?} leaks {secret:?}");
}

/// Asserts that `s` fails with a message containing `fragment`.
fn fails(result: Result<String, ConnStringError>, fragment: &str) {
    refuses(result, fragment, "\u{0}");
}

#[test]
fn translates_libpq_keyword_list_with_quoted_password_and_socket_dir() {
    let url = pg(
        "dbname=spire user=spire password='a b' host=/var/run/postgresql \
                  sslmode=verify-full sslrootcert=/x",
    )
    .unwrap();
    assert_eq!(
        url,
        "postgres://spire:a%20b@localhost/spire?sslmode=verify-full&sslrootcert=%2Fx\
         &host=%2Fvar%2Frun%2Fpostgresql"
    );
}

#[test]
fn reads_spaces_around_equals_and_backslash_escapes() {
    let url = pg(r"user = me  password = 'it\'s \\ ok' host= db.example dbname=a\ b").unwrap();
    assert_eq!(
        url,
        "postgres://me:it%27s%20%5C%20ok@db.example/a%20b?sslmode=require"
    );
}

#[test]
fn keeps_empty_quoted_value_as_no_password() {
    assert_eq!(
        pg("user=u password='' host=h").unwrap(),
        "postgres://u@h/?sslmode=require"
    );
}

#[test]
fn defaults_sslmode_to_require_like_lib_pq() {
    assert_eq!(
        pg("host=h").unwrap(),
        "postgres://localhost/?sslmode=require".replace("localhost", "h")
    );
}

#[test]
fn upgrades_require_with_root_cert_to_verify_ca() {
    let url = pg("host=h sslmode=require sslrootcert=/ca.pem").unwrap();
    assert!(url.contains("sslmode=verify-ca"), "{url}");
    let url = pg("host=h sslrootcert=/ca.pem").unwrap();
    assert!(url.contains("sslmode=verify-ca"), "{url}");
}

#[test]
fn brackets_ipv6_host_and_keeps_port() {
    assert_eq!(
        pg("host=::1 port=6543").unwrap(),
        "postgres://[::1]:6543/?sslmode=require"
    );
}

#[test]
fn passes_postgresql_url_through_in_normal_form() {
    let url =
        pg("postgresql://u:p%40ss@db.example:5433/spire?sslmode=verify-full&sslcert=/c&sslkey=/k")
            .unwrap();
    assert_eq!(
        url,
        "postgres://u:p%40ss@db.example:5433/spire?sslmode=verify-full&sslcert=%2Fc&sslkey=%2Fk"
    );
}

#[test]
fn accepts_socket_directory_in_url_query() {
    let url = pg("postgres://u@/spire?host=/run/pg").unwrap_err();
    // An empty authority with user info is not a URL; the query form without it is.
    assert!(matches!(url, ConnStringError::InvalidUrl { .. }));
    let url = pg("postgres:///spire?host=/run/pg").unwrap();
    assert_eq!(
        url,
        "postgres://localhost/spire?sslmode=require&host=%2Frun%2Fpg"
    );
}

#[test]
fn moves_dot_database_names_to_the_query_where_urls_keep_them() {
    assert_eq!(
        pg("host=h dbname=..").unwrap(),
        "postgres://h/?sslmode=require&dbname=.."
    );
    fails(my("u@tcp(h)/."), "cannot be a URL path");
}

#[test]
fn maps_fallback_application_name_and_drops_utf8_client_encoding() {
    let url = pg("host=h fallback_application_name=spire client_encoding=UTF8").unwrap();
    assert_eq!(url, "postgres://h/?sslmode=require&application_name=spire");
}

#[test]
fn rejects_unknown_key_by_name() {
    refuses(
        pg("host=h sslmod=disable"),
        "unknown key \"sslmod\" in PostgreSQL",
        "disable",
    );
}

#[test]
fn rejects_connect_timeout_as_unsupported() {
    fails(pg("host=h connect_timeout=5"), "key \"connect_timeout\"");
    fails(
        pg("postgres://h/?target_session_attrs=any"),
        "target_session_attrs",
    );
}

#[test]
fn rejects_duplicate_keys_including_user_in_url_and_query() {
    fails(
        pg("sslmode=disable sslmode=verify-full"),
        "\"sslmode\" given twice",
    );
    fails(pg("postgres://a@h/?user=b"), "\"user\" given twice");
}

#[test]
fn rejects_bad_values_with_the_rule() {
    fails(pg("sslmode=verify"), "must be disable, allow");
    fails(pg("port=0"), "port number");
    fails(pg("host=a,b"), "single host");
    fails(pg("client_encoding=LATIN1"), "only UTF8");
}

#[test]
fn reports_unterminated_quote_at_its_offset() {
    let e = pg("host=h password='abc").unwrap_err();
    assert_eq!(e, ConnStringError::UnterminatedQuote { at: 16 });
    assert_eq!(
        e.to_string(),
        "unterminated quote in connection string at byte 16"
    );
}

#[test]
fn reports_missing_equals_and_dangling_backslash() {
    assert_eq!(
        pg("host=h dbname").unwrap_err(),
        ConnStringError::MissingEquals { at: 7 }
    );
    assert_eq!(
        pg("host=h\\").unwrap_err(),
        ConnStringError::DanglingBackslash { at: 6 }
    );
    assert_eq!(pg("=x").unwrap_err(), ConnStringError::EmptyKey { at: 0 });
}

#[test]
fn hides_word_after_unquoted_password_in_errors() {
    refuses(
        pg("user=u password=hunter two=x"),
        "unknown key (not shown)",
        "two",
    );
    refuses(pg("user=u password=hunter two"), "missing '='", "two");
}

#[test]
fn refuses_url_whose_password_holds_unescaped_slash() {
    refuses(pg("postgres://u:pa/QQ@h/db"), "invalid", "QQ");
    refuses(pg("postgres://pa?QQ=1@h/db"), "percent-encode", "QQ");
    refuses(my("mysql://u:pa#QQ@h/db"), "invalid", "QQ");
    refuses(my("mysql://pa#QQ@h/db"), "percent-encode", "QQ");
}

#[test]
fn refuses_empty_string() {
    fails(pg("  "), "PostgreSQL connection string is empty");
    fails(my(""), "MySQL connection string is empty");
}

#[test]
fn translates_go_mysql_dsn_with_tcp_and_drops_parse_time() {
    let url =
        my("spire:p@ss:w/rd@tcp(db.example:3307)/spire?parseTime=true&tls=true&loc=Local").unwrap();
    assert_eq!(
        url,
        "mysql://spire:p%40ss%3Aw%2Frd@db.example:3307/spire?ssl-mode=VERIFY_IDENTITY"
    );
}

#[test]
fn translates_go_mysql_dsn_with_unix_socket() {
    let url = my("user@unix(/run/mysqld/mysqld.sock)/db").unwrap();
    assert_eq!(
        url,
        "mysql://user@localhost/db?socket=%2Frun%2Fmysqld%2Fmysqld.sock"
    );
}

#[test]
fn applies_go_mysql_defaults_for_missing_address() {
    assert_eq!(my("u:pw@/db").unwrap(), "mysql://u:pw@127.0.0.1/db");
    assert_eq!(my("/db").unwrap(), "mysql://127.0.0.1/db");
    assert_eq!(my("u@tcp([::1]:3306)/").unwrap(), "mysql://u@[::1]:3306/");
}

#[test]
fn maps_every_go_tls_value() {
    for (tls, mode) in [
        ("true", "VERIFY_IDENTITY"),
        ("1", "VERIFY_IDENTITY"),
        ("skip-verify", "REQUIRED"),
        ("preferred", "PREFERRED"),
        ("false", "DISABLED"),
    ] {
        let url = my(&format!("u@tcp(h)/db?tls={tls}")).unwrap();
        assert!(
            url.ends_with(&format!("ssl-mode={mode}")),
            "tls={tls} gave {url}"
        );
    }
}

#[test]
fn refuses_named_tls_config_pointing_at_root_ca_path() {
    refuses(
        my("u:secretpw@tcp(h)/db?tls=custom"),
        "tls=\"custom\"",
        "secretpw",
    );
    fails(my("u@tcp(h)/db?tls=custom"), "root_ca_path");
}

#[test]
fn translates_charset_collation_and_time_zone() {
    assert_eq!(
        my("u@tcp(h)/db?charset=utf8mb4,utf8").unwrap(),
        "mysql://u@h/db"
    );
    let url =
        my("u@tcp(h)/db?charset=latin1&collation=latin1_swedish_ci&time_zone=%27%2B00%3A00%27")
            .unwrap();
    assert_eq!(
        url,
        "mysql://u@h/db?charset=latin1&collation=latin1_swedish_ci&timezone=%2B00%3A00"
    );
    fails(my("u@tcp(h)/db?charset=latin1,utf8"), "no charset fallback");
}

#[test]
fn refuses_go_mysql_parameters_sqlx_cannot_honour() {
    fails(my("u@tcp(h)/db?timeout=5s"), "key \"timeout\" in MySQL");
    fails(my("u@tcp(h)/db?clientFoundRows=true"), "clientFoundRows");
    fails(
        my("u@tcp(h)/db?autocommit=1"),
        "unknown key (not shown) in MySQL",
    );
    fails(
        my("u@tcp(h)/db?parsetime=true"),
        "unknown key \"parsetime\" in MySQL",
    );
    fails(my("u@tcp(h)/db?parseTime=yes"), "must be true or false");
    fails(my("u@tcp(h)/db?allowNativePasswords=false"), "only true");
    fails(my("u@tcp(h)/db?tls"), "has no '='");
}

#[test]
fn refuses_malformed_go_mysql_dsns_without_echoing_the_password() {
    refuses(my("u:secretpw@tcp(h:3306"), "no '/'", "secretpw");
    refuses(my("u:secretpw@tcp(h:3306/db"), "not closed", "secretpw");
    refuses(my("u:secret/pw@tcp(h)"), "no '/'", "secret");
    refuses(my("u:secretpw@udp(h)/db"), "protocol \"udp\"", "secretpw");
    refuses(my("u:secretpw/db"), "protocol (not shown)", "secretpw");
    fails(my("u@tcp(h:99999)/db"), "port must be 1-65535");
    fails(my("u@tcp(::1)/db"), "brackets");
    fails(my("u@tcp(h)/d%zz"), "percent-encoding in database name");
}

#[test]
fn passes_mysql_url_through_in_normal_form() {
    let url = my("mysql://u:p%3A@h:3306/db?sslmode=verify_ca&ssl-ca=/ca.pem").unwrap();
    assert_eq!(
        url,
        "mysql://u:p%3A@h:3306/db?ssl-mode=VERIFY_CA&ssl-ca=%2Fca.pem"
    );
    fails(
        my("mysql://h/db?tls=true"),
        "unknown key (not shown) in MySQL",
    );
    fails(
        my("mysql://h/db?ssl_mode=REQUIRED"),
        "unknown key \"ssl_mode\" in MySQL",
    );
    fails(my("mysql://h/db?ssl-mode=on"), "must be DISABLED");
}

#[test]
fn redacts_each_form() {
    assert_eq!(redact("postgres://u:s3cret@h/db"), "postgres://u:***@h/db");
    assert_eq!(
        redact("postgres://u@h/db?password=s3cret&x=1"),
        "postgres://u@h/db?password=***&x=1"
    );
    assert_eq!(redact("mysql://u:s3cret@h/db"), "mysql://u:***@h/db");
    assert_eq!(
        redact("user=u password='s 3cret' host=h"),
        "user=u password=*** host=h"
    );
    assert_eq!(
        redact("u:s3:c@ret@tcp(h)/db?tls=true"),
        "u:***@tcp(h)/db?tls=true"
    );
    assert_eq!(redact("u@unix(/s)/db"), "u@unix(/s)/db");
    assert_eq!(redact("host=h dbname=d"), "host=h dbname=d");
}

#[test]
fn redact_hides_the_rest_of_malformed_strings() {
    assert_eq!(redact("user=u password='s3cret"), "user=u password=***");
    assert_eq!(redact("user=u password=s3 cret"), "user=u password=*** ***");
    assert_eq!(
        redact("user=u password=s3 cr=et"),
        "user=u password=*** ***"
    );
    assert_eq!(
        redact("postgres://u:s3/cr?et@h/db"),
        "postgres://u:***@h/db"
    );
    assert_eq!(redact("u:s3cr/et@tcp(h)"), "u:***@tcp(h)");
}
