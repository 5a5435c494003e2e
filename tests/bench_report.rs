//! The bench report's pure parts (`bench/common/mod.rs`): dates, slugs, section replacement
//! and tables. Bench programs have no test harness, so their shared code is tested here.

use proptest::prelude::*;

use crate::bench_common::*;

#[test]
fn civil_dates_seed_table() {
    let seeds = [
        (0, (1970, 1, 1)),
        (31, (1970, 2, 1)),
        (11_016, (2000, 2, 29)),
        (11_017, (2000, 3, 1)),
        (19_722, (2023, 12, 31)),
        (20_778, (2026, 11, 21)),
        (-1, (1969, 12, 31)),
    ];
    for (days, date) in seeds {
        assert_eq!(civil_date(days), date, "day {days}");
    }
}

/// A naive oracle: walk day by day from 1970-01-01.
fn civil_date_naive(days: i64) -> (i64, u32, u32) {
    let leap = |year: i64| (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = |year: i64, month: u32| match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let (mut year, mut month, mut day) = (1970i64, 1u32, 1u32);
    for _ in 0..days {
        day += 1;
        if day > month_days(year, month) {
            day = 1;
            month += 1;
            if month > 12 {
                month = 1;
                year += 1;
            }
        }
    }
    (year, month, day)
}

proptest! {
    #[test]
    fn civil_date_matches_day_by_day_counting(days in 0i64..40_000) {
        prop_assert_eq!(civil_date(days), civil_date_naive(days));
    }

    #[test]
    fn replacing_a_section_keeps_the_others(
        bodies in proptest::collection::vec("[a-z |\n]{0,30}", 1..5),
        again in "[a-z |\n]{0,30}",
    ) {
        let names = ["e2e", "splitter", "ring", "custom", "view"];
        let mut report = "# header\n".to_string();
        for (name, body) in names.iter().zip(&bodies) {
            report = replace_section(&report, name, body);
        }
        let before = section_names(&report).len();
        let updated = replace_section(&report, names[0], &again);
        prop_assert_eq!(section_names(&updated).len(), before);
        prop_assert!(updated.starts_with("# header\n"));
        // Replacing with the old body again restores the report exactly.
        let restored = replace_section(&updated, names[0], &bodies[0]);
        prop_assert_eq!(restored, report);
    }
}

#[test]
fn sections_are_ordered_whatever_order_benches_run_in() {
    let mut report = String::from("# header\n");
    for name in ["e2e", "custom", "flood", "splitter", "ring"] {
        report = replace_section(&report, name, &format!("{name} body"));
    }
    assert_eq!(
        section_names(&report),
        ["splitter", "ring", "flood", "e2e", "custom"]
    );
    let replaced = replace_section(&report, "ring", "new ring");
    assert!(replaced.contains("<!-- bench:ring -->\nnew ring\n<!-- /bench:ring -->\n"));
    assert!(!replaced.contains("ring body"));
    assert!(replaced.contains("splitter body") && replaced.contains("e2e body"));
    // A section whose end marker was lost takes the rest of the file.
    let broken = "# h\n<!-- bench:ring -->\nold\n";
    assert_eq!(
        replace_section(broken, "ring", "x"),
        "# h\n<!-- bench:ring -->\nx\n<!-- /bench:ring -->\n"
    );
}

#[test]
fn slugs_and_cpu_models() {
    let cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz\n";
    let model = cpu_model_from(cpuinfo).unwrap();
    assert_eq!(model, "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz");
    let machine = Machine {
        hostname: "build.Example.org".into(),
        cpu_model: model,
        cores: 16,
        kernel: "6.1".into(),
    };
    assert_eq!(
        machine.slug(),
        "build-example-org-intel-xeon-e5-2680-v4-16c"
    );
    let vm = Machine {
        hostname: "vm".into(),
        cpu_model: "AMD EPYC".into(),
        cores: 2,
        kernel: "6.18".into(),
    };
    assert_eq!(vm.slug(), "vm-amd-epyc-2c");
    assert_eq!(slugify("--", 10), "machine");
    assert_eq!(slugify("abcdef-ghij", 7), "abcdef");
    assert_eq!(cpu_model_from("flags: x\n"), None);
}

#[test]
fn tables_render_aligned_markdown() {
    let mut table = Table::new(&["case", "rate"]);
    table.row(vec!["a".into(), "1.00 M".into()]);
    table.row(vec!["longer case".into()]);
    assert_eq!(
        table.render(),
        "| case        | rate   |\n|-------------|--------|\n| a           | 1.00 M |\n\
         | longer case |        |\n"
    );
    assert_eq!(si(12_345_678.0, 2), "12.35 M");
    assert_eq!(si(999.0, 0), "999");
}
