//! Unit specifiers (`%n`, `%i`, ...), as systemd.unit(5) "Specifiers" lists them; the ones that
//! depend on the running host are refused rather than guessed.

/// Expands `%` specifiers of `s` for `unit_name`, or says which one is not supported.
pub(super) fn expand_specifiers(s: &str, unit_name: &str) -> Result<String, String> {
    let (stem, _suffix) = unit_name.rsplit_once('.').unwrap_or((unit_name, ""));
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, i),
        None => (stem, ""),
    };
    let last = prefix.rsplit('-').next().unwrap_or(prefix);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let v: String = match chars.next() {
            Some('%') => "%".into(),
            Some('n') => unit_name.into(),
            Some('N') => stem.into(),
            Some('p') | Some('P') => prefix.into(),
            Some('i') | Some('I') => instance.into(),
            Some('j') | Some('J') => last.into(),
            Some('f') => format!(
                "/{}",
                if instance.is_empty() {
                    prefix
                } else {
                    instance
                }
            ),
            Some('t') => "/run".into(),
            Some('S') => "/var/lib".into(),
            Some('C') => "/var/cache".into(),
            Some('L') => "/var/log".into(),
            Some('E') => "/etc".into(),
            Some('T') => "/tmp".into(),
            Some('V') => "/var/tmp".into(),
            Some(o) => return Err(format!("the specifier %{o} is not supported by this tool")),
            None => return Err("a lone % at the end".into()),
        };
        out.push_str(&v);
    }
    Ok(out)
}
