//! Prints the default rule pack's patterns, one per line, for `bench/logs/run.sh` to build
//! the equivalent baselines (grep -P, ripgrep) from the same patterns.

fn main() {
    for r in node_doctor_core::rules::pack::default_rules() {
        println!("{}", r.pattern);
    }
}
