//! How nginx reads the values of the directives upkeep reasons from, and
//! the words `nginx -t` refuses them with.
//!
//! The readers mirror nginx's own: `ngx_atoi` (src/core/ngx_string.c) for
//! counts, `ngx_parse_time` (src/core/ngx_parse.c) for times, the `on`/`off`
//! of `ngx_conf_set_flag_slot`. Every limit and message below was checked
//! with `nginx -t` of nginx 1.22.1 (crates/upkeep-rules/tests/
//! refused_values_nginx_t.rs runs the same inputs); the readers and limits
//! are the same in the nginx sources up to 1.29 (ngx_atoi and
//! ngx_parse_time have not changed since 1.11.x).

/// `NGX_MAX_INT_T_VALUE` on 64-bit systems: the largest count `ngx_atoi`
/// takes, and the largest time (in the directive's unit) `ngx_parse_time`
/// returns.
pub const NGX_MAX_INT: u64 = i64::MAX as u64;

/// A count as `ngx_atoi` reads it: decimal digits only (no sign, no
/// spaces), at most [`NGX_MAX_INT`].
pub fn ngx_atoi(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|&n| n <= NGX_MAX_INT)
}

/// A time as `ngx_parse_time(text, is_sec)` reads it: in milliseconds for
/// `!is_sec` (the `ngx_conf_set_msec_slot` directives: `keepalive_timeout`,
/// `proxy_read_timeout`…), in seconds for `is_sec` (`fail_timeout=`, the
/// second argument of the client `keepalive_timeout`).
///
/// Units go from larger to smaller: `y` (365 days) and `M` (30 days) only in
/// seconds (a millisecond time starts at weeks), `w`, `d`, `h`, `m`, `s`, and
/// `ms` only in milliseconds; a bare number is seconds and ends the value.
/// No component nor the total may pass [`NGX_MAX_INT`] in the result's unit
/// (`keepalive_timeout 9223372036854775s` is the largest in seconds).
pub fn ngx_parse_time(text: &str, is_sec: bool) -> Option<u64> {
    #[derive(Clone, Copy, PartialEq, PartialOrd)]
    enum Step {
        Start,
        Year,
        Month,
        Week,
        Day,
        Hour,
        Min,
        Sec,
        Msec,
        Last,
    }
    const MAX: u64 = NGX_MAX_INT;
    let bytes = text.as_bytes();
    let mut step = if is_sec { Step::Start } else { Step::Month };
    let (mut value, mut total): (u64, u64) = (0, 0);
    let mut valid = false;
    let mut p = 0;
    while p < bytes.len() {
        let c = bytes[p];
        p += 1;
        if c.is_ascii_digit() {
            value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            if value > MAX {
                return None;
            }
            valid = true;
            continue;
        }
        let (next, mut scale): (Step, u64) = match c {
            b'y' if step == Step::Start => (Step::Year, 60 * 60 * 24 * 365),
            b'M' if step < Step::Month => (Step::Month, 60 * 60 * 24 * 30),
            b'w' if step < Step::Week => (Step::Week, 60 * 60 * 24 * 7),
            b'd' if step < Step::Day => (Step::Day, 60 * 60 * 24),
            b'h' if step < Step::Hour => (Step::Hour, 60 * 60),
            b'm' if bytes.get(p) == Some(&b's') => {
                if is_sec || step >= Step::Msec {
                    return None;
                }
                p += 1;
                (Step::Msec, 1)
            }
            b'm' if step < Step::Min => (Step::Min, 60),
            b's' if step < Step::Sec => (Step::Sec, 1),
            b' ' if step < Step::Sec => (Step::Last, 1),
            _ => return None,
        };
        step = next;
        let mut max = MAX / scale;
        if step != Step::Msec && !is_sec {
            scale *= 1000;
            max /= 1000;
        }
        if value > max {
            return None;
        }
        total = total.checked_add(value * scale).filter(|&t| t <= MAX)?;
        value = 0;
        while bytes.get(p) == Some(&b' ') {
            p += 1;
        }
    }
    if !valid {
        return None;
    }
    if !is_sec {
        if value > MAX / 1000 {
            return None;
        }
        value *= 1000;
    }
    total.checked_add(value).filter(|&t| t <= MAX)
}

/// `on` or `off` as `ngx_conf_set_flag_slot` reads them (any case).
pub fn ngx_flag(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("on") {
        Some(true)
    } else if text.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

/// How nginx reads a directive's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `ngx_conf_set_msec_slot`: one time in milliseconds; refused with
    /// `"NAME" directive invalid value`.
    Msec,
    /// The client `keepalive_timeout` (`ngx_http_core_keepalive`): a time in
    /// milliseconds and an optional one in seconds (the `Keep-Alive: timeout=`
    /// header); refused with `"keepalive_timeout" directive invalid value`.
    ClientKeepaliveTimeout,
    /// `ngx_conf_set_num_slot`: one count; refused with `"NAME" directive
    /// invalid number`.
    Num,
    /// `ngx_conf_set_flag_slot`: `on` or `off`; refused with `invalid value
    /// "V" in "NAME" directive, it must be "on" or "off"`.
    Flag,
    /// The upstream `keepalive` (`ngx_http_upstream_keepalive`): a count;
    /// refused with `invalid value "V" in "keepalive" directive`. `0` is
    /// left to the rules: nginx refuses it before 1.29.7 and takes it since
    /// (it disables the cache).
    UpstreamKeepalive,
    /// `worker_connections` (`ngx_event_connections`): a count; refused with
    /// `invalid number "V"`.
    WorkerConnections,
    /// `worker_processes` (`ngx_set_worker_processes`): `auto` or a count;
    /// refused with `"worker_processes" directive invalid value`.
    WorkerProcesses,
    /// An upstream `server` line (`ngx_http_upstream_server`): `weight=`
    /// (at least 1), `max_fails=`, `max_conns=` (counts) and `fail_timeout=`
    /// (a time in seconds); refused with `invalid parameter "P=V"`.
    UpstreamServer,
}

/// Where a directive is, as far as reading its value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueContext {
    /// The main context.
    Main,
    /// `events { }`.
    Events,
    /// `http`, `server`, `location`, `if`, `limit_except`.
    Http,
    /// `upstream { }` in `http`.
    Upstream,
}

/// Millisecond directives of the http levels whose values upkeep reads.
const HTTP_MSEC: &[&str] = &[
    "keepalive_time",
    "client_header_timeout",
    "client_body_timeout",
    "send_timeout",
    "proxy_connect_timeout",
    "proxy_send_timeout",
    "proxy_read_timeout",
    "proxy_next_upstream_timeout",
    "fastcgi_connect_timeout",
    "fastcgi_send_timeout",
    "fastcgi_read_timeout",
    "fastcgi_next_upstream_timeout",
    "uwsgi_connect_timeout",
    "uwsgi_send_timeout",
    "uwsgi_read_timeout",
    "uwsgi_next_upstream_timeout",
    "scgi_connect_timeout",
    "scgi_send_timeout",
    "scgi_read_timeout",
    "scgi_next_upstream_timeout",
    "grpc_connect_timeout",
    "grpc_send_timeout",
    "grpc_read_timeout",
    "grpc_next_upstream_timeout",
];

/// Count directives of the http levels whose values upkeep reads.
const HTTP_NUM: &[&str] = &[
    "keepalive_requests",
    "proxy_next_upstream_tries",
    "fastcgi_next_upstream_tries",
    "uwsgi_next_upstream_tries",
    "scgi_next_upstream_tries",
    "grpc_next_upstream_tries",
];

/// `on`/`off` directives of the http levels whose values upkeep reads.
const HTTP_FLAG: &[&str] = &[
    "proxy_request_buffering",
    "fastcgi_request_buffering",
    "uwsgi_request_buffering",
    "scgi_request_buffering",
    "fastcgi_keep_conn",
    "proxy_ssl_server_name",
    "grpc_ssl_server_name",
    "uwsgi_ssl_server_name",
    "proxy_socket_keepalive",
    "fastcgi_socket_keepalive",
    "uwsgi_socket_keepalive",
    "scgi_socket_keepalive",
    "grpc_socket_keepalive",
];

/// How nginx reads `name` in `context`, for the directives whose values
/// upkeep reasons from; `None` for the others (upkeep does not judge them).
pub fn value_kind(context: ValueContext, name: &str) -> Option<ValueKind> {
    match context {
        ValueContext::Main => match name {
            "worker_shutdown_timeout" => Some(ValueKind::Msec),
            "worker_rlimit_nofile" => Some(ValueKind::Num),
            "worker_processes" => Some(ValueKind::WorkerProcesses),
            _ => None,
        },
        ValueContext::Events => {
            (name == "worker_connections").then_some(ValueKind::WorkerConnections)
        }
        ValueContext::Upstream => match name {
            "keepalive" => Some(ValueKind::UpstreamKeepalive),
            "keepalive_timeout" | "keepalive_time" => Some(ValueKind::Msec),
            "keepalive_requests" => Some(ValueKind::Num),
            "server" => Some(ValueKind::UpstreamServer),
            _ => None,
        },
        ValueContext::Http => {
            if name == "keepalive_timeout" {
                Some(ValueKind::ClientKeepaliveTimeout)
            } else if HTTP_MSEC.contains(&name) {
                Some(ValueKind::Msec)
            } else if HTTP_NUM.contains(&name) {
                Some(ValueKind::Num)
            } else if HTTP_FLAG.contains(&name) {
                Some(ValueKind::Flag)
            } else {
                None
            }
        }
    }
}

/// A value nginx refuses: which argument, and `nginx -t`'s message for it
/// (without the ` in FILE:LINE` nginx appends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Index into the directive's arguments.
    pub arg: usize,
    pub message: String,
}

/// Why a number is refused beyond nginx's words, when it is only too large.
fn too_large(digits: &str, limit: &str) -> String {
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!(" (nginx takes at most {limit})")
    } else {
        String::new()
    }
}

/// Why a time is refused beyond nginx's words: too large, or a unit the
/// directive does not take.
fn time_hint(text: &str, is_sec: bool) -> String {
    if !is_sec && text.bytes().any(|b| b == b'y' || b == b'M') {
        return " (a time in milliseconds takes no `y` or `M` unit)".to_string();
    }
    let well_formed = ngx_parse_time_shape(text, is_sec);
    if well_formed {
        if is_sec {
            format!(" (nginx takes at most {NGX_MAX_INT} seconds)")
        } else {
            format!(
                " (nginx takes at most {}s, {NGX_MAX_INT}ms)",
                NGX_MAX_INT / 1000
            )
        }
    } else {
        String::new()
    }
}

/// Whether `text` has the shape of a time (numbers with units in order)
/// whatever its size: [`ngx_parse_time`] of the same text with every number
/// shortened to one digit.
fn ngx_parse_time_shape(text: &str, is_sec: bool) -> bool {
    let mut short = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                short.push('1');
            }
            in_number = true;
        } else {
            short.push(c);
            in_number = false;
        }
    }
    ngx_parse_time(&short, is_sec).is_some()
}

/// How many arguments a directive read as `kind` takes (least, most), as its
/// `NGX_CONF_TAKE*` flags say; nginx refuses other counts with `invalid
/// number of arguments in "NAME" directive` before it reads a value. The
/// upstream `keepalive` is given its 1.29.7 form (`keepalive N local`)
/// whatever the version.
pub fn arity(kind: ValueKind) -> (usize, usize) {
    match kind {
        ValueKind::ClientKeepaliveTimeout | ValueKind::UpstreamKeepalive => (1, 2),
        ValueKind::UpstreamServer => (1, usize::MAX),
        ValueKind::Msec
        | ValueKind::Num
        | ValueKind::Flag
        | ValueKind::WorkerConnections
        | ValueKind::WorkerProcesses => (1, 1),
    }
}

/// Whether nginx refuses the arguments `args` of `name`, read as `kind`.
/// Argument counts are not judged here (see [`arity`]).
pub fn refusal(kind: ValueKind, name: &str, args: &[&str]) -> Option<Refusal> {
    let first = *args.first()?;
    let refuse = |arg: usize, message: String| Some(Refusal { arg, message });
    match kind {
        ValueKind::Msec => match ngx_parse_time(first, false) {
            Some(_) => None,
            None => refuse(
                0,
                format!(
                    "\"{name}\" directive invalid value{}",
                    time_hint(first, false)
                ),
            ),
        },
        ValueKind::ClientKeepaliveTimeout => {
            if ngx_parse_time(first, false).is_none() {
                return refuse(
                    0,
                    format!(
                        "\"{name}\" directive invalid value{}",
                        time_hint(first, false)
                    ),
                );
            }
            let second = *args.get(1)?;
            match ngx_parse_time(second, true) {
                Some(_) => None,
                None => refuse(
                    1,
                    format!(
                        "\"{name}\" directive invalid value{}",
                        time_hint(second, true)
                    ),
                ),
            }
        }
        ValueKind::Num => match ngx_atoi(first) {
            Some(_) => None,
            None => refuse(
                0,
                format!(
                    "\"{name}\" directive invalid number{}",
                    too_large(first, &NGX_MAX_INT.to_string())
                ),
            ),
        },
        ValueKind::Flag => match ngx_flag(first) {
            Some(_) => None,
            None => refuse(
                0,
                format!("invalid value \"{first}\" in \"{name}\" directive, it must be \"on\" or \"off\""),
            ),
        },
        ValueKind::UpstreamKeepalive => match ngx_atoi(first) {
            Some(_) => None,
            None => refuse(
                0,
                format!(
                    "invalid value \"{first}\" in \"{name}\" directive{}",
                    too_large(first, &NGX_MAX_INT.to_string())
                ),
            ),
        },
        ValueKind::WorkerConnections => match ngx_atoi(first) {
            Some(_) => None,
            None => refuse(
                0,
                format!(
                    "invalid number \"{first}\"{}",
                    too_large(first, &NGX_MAX_INT.to_string())
                ),
            ),
        },
        ValueKind::WorkerProcesses => {
            if first == "auto" || ngx_atoi(first).is_some() {
                None
            } else {
                refuse(
                    0,
                    format!(
                        "\"{name}\" directive invalid value{}",
                        too_large(first, &NGX_MAX_INT.to_string())
                    ),
                )
            }
        }
        ValueKind::UpstreamServer => {
            for (i, param) in args.iter().enumerate().skip(1) {
                let Some((key, value)) = param.split_once('=') else {
                    continue;
                };
                let ok = match key {
                    "weight" => ngx_atoi(value).is_some_and(|n| n > 0),
                    "max_fails" | "max_conns" => ngx_atoi(value).is_some(),
                    "fail_timeout" => ngx_parse_time(value, true).is_some(),
                    // Other parameters (and other servers' own ones) are
                    // not read by upkeep.
                    _ => true,
                };
                if !ok {
                    let hint = if key == "fail_timeout" {
                        time_hint(value, true)
                    } else if key == "weight" && value == "0" {
                        " (the weight is at least 1)".to_string()
                    } else {
                        too_large(value, &NGX_MAX_INT.to_string())
                    };
                    return refuse(i, format!("invalid parameter \"{param}\"{hint}"));
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_takes_digits_up_to_the_largest_integer() {
        assert_eq!(ngx_atoi("0"), Some(0));
        assert_eq!(ngx_atoi("9223372036854775807"), Some(NGX_MAX_INT));
        for bad in [
            "",
            "abc",
            "-1",
            "+1",
            " 1",
            "1 ",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            assert_eq!(ngx_atoi(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times_in_milliseconds_as_nginx_1_22_reads_them() {
        let ms = |t: &str| ngx_parse_time(t, false);
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("75"), Some(75_000));
        assert_eq!(ms("1m30s"), Some(90_000));
        assert_eq!(ms("1h 30m"), Some(5_400_000));
        assert_eq!(ms("1w"), Some(7 * 86_400_000));
        assert_eq!(ms("9223372036854775s"), Some(9_223_372_036_854_775_000));
        assert_eq!(ms("9223372036854775807ms"), Some(NGX_MAX_INT));
        for bad in [
            "",
            "zz",
            "s",
            "1y",
            "1M",
            "5 s",
            "30s1m",
            "1m1m",
            "-5s",
            "9223372036854776s",
            "9223372036854775808ms",
            "9223372036854775807s",
            "9223372036854775807",
            "18446744073709551616ms",
        ] {
            assert_eq!(ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times_in_seconds_as_nginx_1_22_reads_them() {
        let s = |t: &str| ngx_parse_time(t, true);
        assert_eq!(s("10"), Some(10));
        assert_eq!(s("1y"), Some(365 * 86_400));
        assert_eq!(s("9223372036854775807"), Some(NGX_MAX_INT));
        for bad in ["abc", "500ms", "9223372036854775808", "1s1y"] {
            assert_eq!(s(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn refusals_carry_the_words_of_nginx_1_22() {
        let r = |kind, name, args: &[&str]| refusal(kind, name, args).map(|r| (r.arg, r.message));
        assert_eq!(
            r(ValueKind::UpstreamKeepalive, "keepalive", &["abc"]),
            Some((0, "invalid value \"abc\" in \"keepalive\" directive".into()))
        );
        assert_eq!(r(ValueKind::UpstreamKeepalive, "keepalive", &["0"]), None);
        assert_eq!(
            r(
                ValueKind::ClientKeepaliveTimeout,
                "keepalive_timeout",
                &["zz"]
            ),
            Some((0, "\"keepalive_timeout\" directive invalid value".into()))
        );
        assert_eq!(
            r(
                ValueKind::ClientKeepaliveTimeout,
                "keepalive_timeout",
                &["60s", "zz"]
            ),
            Some((1, "\"keepalive_timeout\" directive invalid value".into()))
        );
        assert_eq!(
            r(
                ValueKind::ClientKeepaliveTimeout,
                "keepalive_timeout",
                &["60s", "1y"]
            ),
            None
        );
        assert_eq!(
            r(ValueKind::Num, "keepalive_requests", &["abc"]),
            Some((0, "\"keepalive_requests\" directive invalid number".into()))
        );
        assert_eq!(
            r(ValueKind::WorkerConnections, "worker_connections", &["abc"]),
            Some((0, "invalid number \"abc\"".into()))
        );
        assert_eq!(
            r(ValueKind::Flag, "fastcgi_keep_conn", &["yes"]),
            Some((
                0,
                "invalid value \"yes\" in \"fastcgi_keep_conn\" directive, it must be \"on\" or \"off\"".into()
            ))
        );
        assert_eq!(
            r(ValueKind::Flag, "proxy_request_buffering", &["OFF"]),
            None
        );
        assert_eq!(
            r(
                ValueKind::UpstreamServer,
                "server",
                &["127.0.0.1:8080", "backup", "max_fails=abc"]
            ),
            Some((2, "invalid parameter \"max_fails=abc\"".into()))
        );
        assert_eq!(
            r(ValueKind::UpstreamServer, "server", &["a", "weight=0"]).map(|r| r.0),
            Some(1)
        );
        assert_eq!(
            r(
                ValueKind::UpstreamServer,
                "server",
                &["a", "fail_timeout=1y", "max_conns=9223372036854775807"]
            ),
            None
        );
        assert_eq!(
            r(ValueKind::WorkerProcesses, "worker_processes", &["auto"]),
            None
        );
        assert_eq!(
            r(ValueKind::WorkerProcesses, "worker_processes", &["0"]),
            None
        );
    }

    #[test]
    fn too_large_values_say_the_limit() {
        let m = |kind, name, args: &[&str]| refusal(kind, name, args).unwrap().message;
        assert_eq!(
            m(ValueKind::UpstreamKeepalive, "keepalive", &["99999999999999999999"]),
            "invalid value \"99999999999999999999\" in \"keepalive\" directive (nginx takes at most 9223372036854775807)"
        );
        assert_eq!(
            m(ValueKind::Msec, "keepalive_timeout", &["9223372036854775807s"]),
            "\"keepalive_timeout\" directive invalid value (nginx takes at most 9223372036854775s, 9223372036854775807ms)"
        );
        assert_eq!(
            m(ValueKind::Msec, "proxy_connect_timeout", &["1M"]),
            "\"proxy_connect_timeout\" directive invalid value (a time in milliseconds takes no `y` or `M` unit)"
        );
    }
}
