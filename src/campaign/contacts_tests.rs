use super::*;
use proptest::prelude::*;

fn us() -> Country {
    "US".parse().unwrap()
}

fn ke() -> Country {
    "ke".parse().unwrap()
}

fn imp(csv: &str) -> Import {
    import("list.csv", csv.as_bytes(), us()).unwrap()
}

fn imp_err(csv: &[u8]) -> String {
    import("list.csv", csv, us()).unwrap_err().to_string()
}

#[test]
fn countries_are_checked_against_the_metadata() {
    assert_eq!(us().to_string(), "US");
    assert_eq!(ke().to_string(), "KE");
    assert!("XX".parse::<Country>().is_err());
    assert!("".parse::<Country>().is_err());
    assert!("USA".parse::<Country>().is_err());
}

#[test]
fn numbers_become_e164() {
    assert_eq!(normalize("(650) 253-0000", us()).unwrap(), "+16502530000");
    assert_eq!(normalize(" 650.253.0000 ", us()).unwrap(), "+16502530000");
    assert_eq!(normalize("0712 345678", ke()).unwrap(), "+254712345678");
    // With a + the default country does not matter.
    assert_eq!(normalize("+254 712 345678", us()).unwrap(), "+254712345678");
    assert_eq!(
        normalize("+44 20 7946 0958", ke()).unwrap(),
        "+442079460958"
    );
    // No country: only international numbers; a national one is refused,
    // never guessed.
    assert_eq!(
        normalize("+254 712 345678", Country::NONE).unwrap(),
        "+254712345678"
    );
    assert_eq!(
        normalize("0712 345678", Country::NONE),
        Err(BadNumber::NoCountry)
    );
    assert_eq!(normalize("", us()), Err(BadNumber::Empty));
    assert_eq!(normalize("   ", us()), Err(BadNumber::Empty));
    assert_eq!(normalize("hello", us()), Err(BadNumber::NotANumber));
    assert_eq!(normalize("123", us()), Err(BadNumber::Invalid));
    assert_eq!(normalize("(123) 456-7890", us()), Err(BadNumber::Invalid));
    assert_eq!(
        normalize("650 253 0000 ext. 12", us()),
        Err(BadNumber::Extension)
    );
    assert_eq!(
        normalize(&"5".repeat(MAX_NUMBER_LEN + 1), us()),
        Err(BadNumber::NotANumber)
    );
}

#[test]
fn a_list_keeps_its_columns_in_header_order() {
    let i =
        imp("name,Phone,amount,TZ\nAnn,650-253-0000,12,America/New_York\nBob,+254712345678,7,\n");
    assert_eq!(i.columns, ["name", "amount"]);
    assert_eq!(
        i.contacts,
        [
            Contact {
                line: 2,
                phone: "+16502530000".into(),
                tz: Some("America/New_York".into()),
                fields: vec![
                    ("name".into(), "Ann".into()),
                    ("amount".into(), "12".into())
                ],
            },
            Contact {
                line: 3,
                phone: "+254712345678".into(),
                tz: None,
                fields: vec![("name".into(), "Bob".into()), ("amount".into(), "7".into())],
            },
        ]
    );
    assert!(i.rejected.is_empty());
    assert_eq!(i.summary(), "2 contacts, 0 invalid, 0 duplicates");
}

#[test]
fn bad_rows_are_left_out_with_their_lines() {
    let i = imp(concat!(
        "phone,tz,name\n",
        "6502530000,,a\n",                                // 2
        "not a number,,b\n",                              // 3
        "+1 650 253 0000,,c\n",                           // 4 duplicate of 2
        "6502530001,Mars/Olympus,d\n",                    // 5 bad zone
        "6502530002,,e,extra\n",                          // 6 cells
        "\"6502530003\",Europe/London,\"multi\nline\"\n", // 7-8
        "(650) 253-0000,,g\n",                            // 9 duplicate of 2
    ));
    let got: Vec<(u64, &str, Why)> = i
        .rejected
        .iter()
        .map(|r| (r.line, r.value.as_str(), r.why.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "not a number", Why::Number(BadNumber::NotANumber)),
            (4, "+1 650 253 0000", Why::Duplicate { first_line: 2 }),
            (5, "Mars/Olympus", Why::Zone),
            (6, "6502530002", Why::Cells { got: 4, want: 3 }),
            (9, "(650) 253-0000", Why::Duplicate { first_line: 2 }),
        ]
    );
    let lines: Vec<u64> = i.contacts.iter().map(|c| c.line).collect();
    assert_eq!(lines, [2, 7]);
    assert_eq!(i.contacts[1].fields[0].1, "multi\nline");
    assert_eq!(i.summary(), "2 contacts, 3 invalid, 2 duplicates");
    assert_eq!(
        i.rejected[1].to_string(),
        "line 4: \"+1 650 253 0000\": duplicate of line 2"
    );
}

#[test]
fn a_bom_and_blank_lines_are_not_rows() {
    let i = imp("\u{feff}phone\n6502530000\n\n6502530001\n");
    assert_eq!(i.contacts.len(), 2);
    assert!(i.rejected.is_empty());
    assert_eq!(i.contacts[1].line, 4);
    let i = imp("phone\r\n\r\n\r\n6502530000\r\n\n\n\"6502530001\"\n");
    let lines: Vec<u64> = i.contacts.iter().map(|c| c.line).collect();
    assert_eq!(lines, [4, 7]);
}

#[test]
fn bad_files_name_the_file_and_line() {
    assert_eq!(
        imp_err(b""),
        "list.csv: no header row (the first line names the columns, one of them `phone`)"
    );
    assert_eq!(
        imp_err(b"name,number\nAnn,1\n"),
        "list.csv:1: no `phone` column in the header"
    );
    assert_eq!(
        imp_err(b"phone,name,Name,name\n"),
        "list.csv:1: column \"name\" appears twice in the header"
    );
    assert_eq!(
        imp_err(b"phone,PHONE\n"),
        "list.csv:1: column \"PHONE\" appears twice in the header"
    );
    assert_eq!(
        imp_err(b"phone,,x\n"),
        "list.csv:1: column 2 of the header has no name"
    );
    assert_eq!(
        imp_err(b"phone,name\n6502530000,ok\n6502530001,caf\xe9\n"),
        "list.csv:3: not UTF-8 text"
    );
    let e = import_file(std::path::Path::new("/nonexistent/x.csv"), us()).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/x.csv: "), "{e}");
}

#[test]
fn a_header_only_file_is_an_empty_list() {
    let i = imp("phone\n");
    assert!(i.contacts.is_empty() && i.rejected.is_empty());
    assert_eq!(i.summary(), "0 contacts, 0 invalid, 0 duplicates");
}

#[test]
fn templates() {
    let f = vec![
        ("name".to_string(), "Ann".to_string()),
        ("amount".to_string(), "12".to_string()),
    ];
    assert_eq!(
        fill_template("Hello {name}, you owe {amount}.", &f),
        "Hello Ann, you owe 12."
    );
    assert_eq!(fill_template("{{name}} is {name}", &f), "{name} is Ann");
    assert_eq!(fill_template("a }} b", &f), "a } b");
    assert_eq!(fill_template("Hi {nobody}", &f), "Hi {nobody}");
    assert_eq!(fill_template("{ {name} } {", &f), "{ Ann } {");
    assert_eq!(fill_template("{}{Name}", &f), "{}{Name}");
    assert_eq!(fill_template("", &f), "");
    assert_eq!(fill_template("no keys", &f), "no keys");
    assert_eq!(fill_template("é{name}ü", &f), "éAnnü");
    assert_eq!(
        template_keys("{name} {{x}} {amount} {name} {"),
        ["name", "amount"]
    );
}

proptest! {
    #[test]
    fn import_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = import("p.csv", &bytes, us());
    }

    #[test]
    fn import_never_panics_on_list_like_text(
        rows in proptest::collection::vec("[0-9+() ,\"a-z/\n.-]{0,30}", 0..20)
    ) {
        let text = format!("phone,tz,x\n{}", rows.join("\n"));
        if let Ok(i) = import("p.csv", text.as_bytes(), ke()) {
            let mut seen = std::collections::HashSet::new();
            for c in &i.contacts {
                prop_assert!(c.phone.starts_with('+'));
                prop_assert!(seen.insert(c.phone.clone()));
            }
        }
    }

    #[test]
    fn normalize_never_panics(s in "\\PC{0,40}") {
        for c in ["US", "KE", "GB", "DE", "IN"] {
            let _ = normalize(&s, c.parse().unwrap());
        }
    }

    #[test]
    fn templates_without_braces_are_unchanged(s in "[^{}]{0,40}") {
        prop_assert_eq!(fill_template(&s, &[]), s);
    }
}
