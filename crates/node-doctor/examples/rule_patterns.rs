//! Prints the default rule pack's patterns, one per line, for `bench/logs/run.sh` to build
//! the equivalent `grep -P` baseline from the same patterns.

fn main() {
    for r in node_doctor::logs::pack::default_rules() {
        println!("{}", r.pattern);
    }
}
