//! Job schedulers: a message enqueued every interval or on a cron pattern in a time zone,
//! upserted by id, with a limit and an end; each run enqueued exactly once however many
//! workers (and processes) drive the schedule, on the server's clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::enqueue::millis;
use super::keys::QueueKeys;
use super::scripts::{
    DUE_SCHEDULES, FIRE_SCHEDULE, LIST_SCHEDULES, REMOVE_SCHEDULE, UPSERT_SCHEDULE,
};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::wake;
use crate::resp::Value;
use crate::value::{ArgBuf, FromValue, ToArgs};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repeat {
    Every(Duration),
    #[cfg(feature = "mq-cron")]
    Cron {
        tz: String,
        expr: String,
    },
}

/// When a scheduled message runs. Every worker of the queue drives its schedules: the run
/// due is enqueued by the first worker to see it (fenced on the server by the due time), as
/// message `<schedule id>@<due ms>`, and the schedule moves to its next run. Runs missed
/// while no worker was up are skipped (the next one after now is fired once). Times are the
/// server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    repeat: Repeat,
    limit: u64,
    end_ms: u64,
    start_ms: u64,
    priority: i8,
    lock_ms: u64,
}

impl Schedule {
    /// Every `interval` (at least 1 ms), the first run one interval after the upsert (or at
    /// [`start`](Self::start)).
    pub fn every(interval: Duration) -> Result<Schedule> {
        if interval < Duration::from_millis(1) {
            return Err(Error::config("a schedule's interval must be at least 1 ms"));
        }
        Ok(Self::with(Repeat::Every(interval)))
    }

    /// On a cron pattern with seconds (`sec min hour day-of-month month day-of-week
    /// [year]`, e.g. `0 30 9 * * Mon-Fri`), in the IANA time zone `tz` (e.g.
    /// `Europe/Paris`; daylight saving followed). Feature `mq-cron`.
    #[cfg(feature = "mq-cron")]
    pub fn cron(pattern: &str, tz: &str) -> Result<Schedule> {
        use std::str::FromStr;
        cron::Schedule::from_str(pattern)
            .map_err(|e| Error::config(format!("cron pattern {pattern:?}: {e}")))?;
        tz.parse::<chrono_tz::Tz>()
            .map_err(|e| Error::config(format!("time zone {tz:?}: {e}")))?;
        if pattern.contains('|') {
            return Err(Error::config("a cron pattern has no '|'"));
        }
        Ok(Self::with(Repeat::Cron {
            tz: tz.to_owned(),
            expr: pattern.to_owned(),
        }))
    }

    fn with(repeat: Repeat) -> Schedule {
        Schedule {
            repeat,
            limit: 0,
            end_ms: 0,
            start_ms: 0,
            priority: 0,
            lock_ms: 0,
        }
    }

    /// At most `runs` runs in all.
    pub fn limit(mut self, runs: u64) -> Self {
        self.limit = runs;
        self
    }

    /// No run after `at`.
    pub fn end(mut self, at: SystemTime) -> Self {
        self.end_ms = unix_ms(at);
        self
    }

    /// The first run at `at` (an `every` schedule), or the first match after it (cron).
    pub fn start(mut self, at: SystemTime) -> Self {
        self.start_ms = unix_ms(at);
        self
    }

    /// The runs' priority (see [`EnqueueOptions::priority`](super::EnqueueOptions::priority)).
    pub fn priority(mut self, priority: i8) -> Self {
        self.priority = priority;
        self
    }

    /// The runs' own lock time.
    pub fn lock_time(mut self, d: Duration) -> Self {
        self.lock_ms = millis(d);
        self
    }

    fn spec(&self) -> String {
        let tail = format!(
            "{}|{}|{}|{}|{}",
            self.limit, self.end_ms, self.start_ms, self.priority, self.lock_ms
        );
        match &self.repeat {
            Repeat::Every(d) => format!("v1|every|{}|{tail}", millis(*d)),
            #[cfg(feature = "mq-cron")]
            Repeat::Cron { tz, expr } => format!("v1|cron|{tz}|{expr}|{tail}"),
        }
    }

    fn parse(spec: &str) -> Result<Schedule> {
        let bad = || Error::protocol(format!("unreadable schedule {spec:?}"));
        let parts: Vec<&str> = spec.split('|').collect();
        let (repeat, tail) = match parts.as_slice() {
            ["v1", "every", ms, tail @ ..] => (
                Repeat::Every(Duration::from_millis(ms.parse().map_err(|_| bad())?)),
                tail,
            ),
            #[cfg(feature = "mq-cron")]
            ["v1", "cron", tz, expr, tail @ ..] => (
                Repeat::Cron {
                    tz: (*tz).to_owned(),
                    expr: (*expr).to_owned(),
                },
                tail,
            ),
            ["v1", "cron", ..] => {
                return Err(Error::config(
                    "a cron schedule needs kermes's mq-cron feature in this process",
                ));
            }
            _ => return Err(bad()),
        };
        let [limit, end, start, prio, lock] = tail else {
            return Err(bad());
        };
        Ok(Schedule {
            repeat,
            limit: limit.parse().map_err(|_| bad())?,
            end_ms: end.parse().map_err(|_| bad())?,
            start_ms: start.parse().map_err(|_| bad())?,
            priority: prio.parse().map_err(|_| bad())?,
            lock_ms: lock.parse().map_err(|_| bad())?,
        })
    }

    /// The first run after `after` (server ms) counted from `anchor` (a due run, for
    /// `every`); `None` past the end.
    fn next_after(&self, anchor: u64, after: u64) -> Result<Option<u64>> {
        let next = match &self.repeat {
            Repeat::Every(d) => {
                let step = millis(*d).max(1);
                let behind = after.saturating_sub(anchor) / step + 1;
                anchor + behind * step
            }
            #[cfg(feature = "mq-cron")]
            Repeat::Cron { tz, expr } => {
                use chrono::TimeZone;
                use std::str::FromStr;
                let pattern = cron::Schedule::from_str(expr)
                    .map_err(|e| Error::config(format!("cron pattern {expr:?}: {e}")))?;
                let tz: chrono_tz::Tz = tz
                    .parse()
                    .map_err(|e| Error::config(format!("time zone {tz:?}: {e}")))?;
                let from = tz
                    .timestamp_millis_opt(after as i64)
                    .single()
                    .ok_or_else(|| Error::config("a time out of range"))?;
                match pattern.after(&from).next() {
                    Some(t) => t.timestamp_millis().max(0) as u64,
                    None => return Ok(None),
                }
            }
        };
        Ok((self.end_ms == 0 || next <= self.end_ms).then_some(next))
    }

    /// The first run of a schedule upserted at `now`.
    fn first(&self, now: u64) -> Result<Option<u64>> {
        match (&self.repeat, self.start_ms) {
            (Repeat::Every(_), start) if start > 0 => {
                Ok((self.end_ms == 0 || start <= self.end_ms).then_some(start))
            }
            (Repeat::Every(d), _) => {
                let first = now + millis(*d);
                Ok((self.end_ms == 0 || first <= self.end_ms).then_some(first))
            }
            #[cfg(feature = "mq-cron")]
            (_, start) => self.next_after(0, start.max(now)),
        }
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// What [`upsert_schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upserted {
    /// A new schedule.
    Created,
    /// Its timing changed: the next run is recomputed.
    Updated,
    /// Same timing (the message may be new): the next run stays.
    Unchanged,
}

/// Creates or updates the schedule `id` of `queue`, which enqueues `message` (one value) at
/// each run. Upserting the same schedule again (every instance of a service at start) keeps
/// its next run; a changed timing recomputes it; the message is replaced either way.
pub async fn upsert_schedule(
    client: &Client,
    queue: &str,
    id: &str,
    schedule: &Schedule,
    message: impl ToArgs,
) -> Result<Upserted> {
    let keys = QueueKeys::new(queue)?;
    if id.is_empty() || id.contains('@') {
        return Err(Error::config(
            "a schedule id must be non-empty, without '@'",
        ));
    }
    let mut payload = ArgBuf::default();
    message.write_args(&mut payload);
    if let Some(e) = payload.take_error() {
        return Err(e);
    }
    if payload.len() != 1 {
        return Err(Error::type_error(
            "a scheduled message must be exactly one value",
        ));
    }
    let (secs, micros): (u64, u64) = client.cmd("TIME").query().await?;
    let now = secs * 1000 + micros / 1000;
    let first = schedule
        .first(now)?
        .ok_or_else(|| Error::config("the schedule ends before its first run"))?;
    let mut args = ArgBuf::default();
    (
        id,
        schedule.spec(),
        first,
        keys.channel.as_str(),
        wake::publish_command(client),
    )
        .write_args(&mut args);
    args.append(&payload);
    let done: String = UPSERT_SCHEDULE.run(client, &keys, args).await?;
    Ok(match done.as_str() {
        "created" => Upserted::Created,
        "updated" => Upserted::Updated,
        _ => Upserted::Unchanged,
    })
}

/// Removes the schedule `id`; true when it existed. Runs already enqueued stay.
pub async fn remove_schedule(client: &Client, queue: &str, id: &str) -> Result<bool> {
    let keys = QueueKeys::new(queue)?;
    let n: i64 = REMOVE_SCHEDULE.run(client, &keys, id).await?;
    Ok(n == 1)
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleInfo {
    /// Its id.
    pub id: String,
    /// When it runs next (server clock); `None` when finished (limit or end reached).
    pub next_run: Option<SystemTime>,
    /// Runs enqueued so far.
    pub runs: u64,
}

/// The schedules of `queue`, in no particular order.
pub async fn schedules(client: &Client, queue: &str) -> Result<Vec<ScheduleInfo>> {
    let keys = QueueKeys::new(queue)?;
    let rows: Vec<(String, String, i64, u64)> = LIST_SCHEDULES.run(client, &keys, ()).await?;
    Ok(rows
        .into_iter()
        .map(|(id, _, next, runs)| ScheduleInfo {
            id,
            next_run: u64::try_from(next)
                .ok()
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
            runs,
        })
        .collect())
}

/// Fires every run due now; returns how long until the next (None: no schedule). Driven by
/// each worker's scheduler task.
pub(crate) async fn fire_due(client: &Client, keys: &QueueKeys) -> Result<Option<Duration>> {
    loop {
        let reply: Vec<Value> = DUE_SCHEDULES.run(client, keys, ()).await?;
        let mut items = reply.into_iter();
        let now = u64::from_value(items.next().unwrap_or(Value::Int(0)))?;
        let next = i64::from_value(items.next().unwrap_or(Value::Int(-1)))?;
        let mut fired = 0;
        while let (Some(id), Some(spec), Some(due), Some(runs)) =
            (items.next(), items.next(), items.next(), items.next())
        {
            let (id, spec) = (String::from_value(id)?, String::from_value(spec)?);
            let (due, runs) = (u64::from_value(due)?, u64::from_value(runs)?);
            let schedule = match Schedule::parse(&spec) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(queue = %keys.name, schedule = %id, error = %e, "a schedule cannot be read; skipped");
                    continue;
                }
            };
            let finished = schedule.limit > 0 && runs + 1 >= schedule.limit;
            let next_run = if finished {
                0
            } else {
                schedule.next_after(due, now.max(due))?.unwrap_or(0)
            };
            let mut args = ArgBuf::default();
            (keys.channel.as_str(), wake::publish_command(client)).write_args(&mut args);
            (
                (
                    format!("{id}@{due}"),
                    schedule.lock_ms,
                    i64::from(schedule.priority),
                    0,
                    0,
                ),
                ("0", "0", "0", ""),
                (id.as_str(), due, next_run),
            )
                .write_args(&mut args);
            let result: String = FIRE_SCHEDULE.run(client, keys, args).await?;
            tracing::debug!(queue = %keys.name, schedule = %id, due, result = %result, "schedule run");
            fired += 1;
        }
        if fired == 0 {
            return Ok(u64::try_from(next).ok().map(Duration::from_millis));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_every_skips_missed_runs() {
        let s = Schedule::every(Duration::from_millis(500))
            .unwrap()
            .limit(3)
            .priority(-2);
        assert_eq!(Schedule::parse(&s.spec()).unwrap(), s);
        assert_eq!(s.next_after(1_000, 1_000).unwrap(), Some(1_500));
        assert_eq!(s.next_after(1_000, 1_499).unwrap(), Some(1_500));
        assert_eq!(
            s.next_after(1_000, 2_700).unwrap(),
            Some(3_000),
            "missed runs skipped"
        );
        let ended = s.clone().end(UNIX_EPOCH + Duration::from_millis(2_000));
        assert_eq!(ended.next_after(1_000, 2_100).unwrap(), None);
        assert!(Schedule::parse("v1|every|x").is_err());
    }

    #[cfg(feature = "mq-cron")]
    #[test]
    fn cron_runs_follow_the_time_zone() {
        // 09:30 in Paris is 08:30 UTC in winter (CET) and 07:30 UTC in summer (CEST).
        let s = Schedule::cron("0 30 9 * * *", "Europe/Paris").unwrap();
        assert_eq!(Schedule::parse(&s.spec()).unwrap(), s);
        let jan_1 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(
            s.next_after(0, jan_1).unwrap(),
            Some(jan_1 + (8 * 60 + 30) * 60_000)
        );
        let jul_1 = 1_782_864_000_000; // 2026-07-01T00:00:00Z
        assert_eq!(
            s.next_after(0, jul_1).unwrap(),
            Some(jul_1 + (7 * 60 + 30) * 60_000)
        );
        assert!(Schedule::cron("not a pattern", "UTC").is_err());
        assert!(Schedule::cron("0 * * * * *", "Mars/Olympus").is_err());
    }
}
