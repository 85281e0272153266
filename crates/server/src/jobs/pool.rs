//! Bounded job pools in which requests go first.
//!
//! A pool has a fixed number of slots. A make asks for one with its [`MakeCtx`]: the
//! [`Priority`] of whoever waits for it decides its place.
//!
//! - A free slot goes to the oldest waiting request, and only when no request waits to the
//!   oldest waiting background make (prefetch): prefetch starts only on an idle slot.
//! - A request that finds no free slot takes one back from a running background make: that
//!   make's cancel token fires (the coalescer drops it, the transcode stops before its next
//!   frame) and the slot comes to the request when the blocking work ends.
//! - A background make that a request joins is a request from then on (its priority rises):
//!   it moves ahead of the prefetch queue and is never taken back.
//!
//! So prefetch never delays a request by more than one frame of a cancelled encode.
//!
//! A pool of CPU-bound work ([`Pool::for_cores`], sized to the cores: video encodes) goes
//! further, because there an idle *slot* is not an idle *core*: a prefetch encode beside a
//! request's encode halves the request's speed on two cores. There requests have the machine:
//! background makes start only while no request runs or waits, and a request that starts takes
//! back every running background make (each is cancelled and ends before its next frame).
//! Requests of a light pool that [yields to it](Pool::yielding_to) (an audio segment a player
//! waits for beside its video) count as requests there too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cache::{Cancel, MakeCtx, Priority, PriorityWatch};
use tokio::sync::oneshot;

/// A pool of job slots (one per concurrent make). Share it as `Arc<Pool>`.
pub struct Pool {
    size: usize,
    /// Requests have the machine: no background make runs beside one (CPU-bound pools).
    requests_exclusive: bool,
    /// The CPU-bound pool whose background work waits while this pool's requests run.
    cores: Option<Arc<Pool>>,
    state: Mutex<State>,
}

struct State {
    /// Requests running in light pools that yield to this one.
    outside_requests: usize,
    idle: usize,
    next: u64,
    queue: Vec<Queued>,
    running: HashMap<u64, Running>,
}

struct Queued {
    id: u64,
    priority: PriorityWatch,
    cancel: Cancel,
    tx: oneshot::Sender<Slot>,
}

struct Running {
    priority: PriorityWatch,
    cancel: Cancel,
    /// A request counted in the `cores` pool while it runs.
    counted: bool,
}

/// A held slot; dropping it hands the slot to the next waiting make.
pub struct Slot {
    pool: Arc<Pool>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.release(self.id);
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state();
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("idle", &st.idle)
            .field("queued", &st.queue.len())
            .finish()
    }
}

/// Removes a queued entry when its `acquire` future is dropped (timeout, cancellation).
struct Dequeue<'a> {
    pool: &'a Pool,
    id: u64,
}

impl Drop for Dequeue<'_> {
    fn drop(&mut self) {
        self.pool.state().queue.retain(|q| q.id != self.id);
    }
}

impl Pool {
    /// A pool of `size` slots (at least one).
    pub fn new(size: usize) -> Arc<Pool> {
        Pool::build(size, false, None)
    }

    /// A pool of `size` slots for light work whose requests also hold back the background
    /// work of `cores` (a [`Pool::for_cores`]): while one runs, no prefetch encode competes
    /// with it for the cores.
    pub fn yielding_to(size: usize, cores: Arc<Pool>) -> Arc<Pool> {
        Pool::build(size, false, Some(cores))
    }

    /// A pool of `size` slots (at least one) for CPU-bound work, one slot per core: background
    /// makes run only while no request runs or waits (see the module notes).
    pub fn for_cores(size: usize) -> Arc<Pool> {
        Pool::build(size, true, None)
    }

    fn build(size: usize, requests_exclusive: bool, cores: Option<Arc<Pool>>) -> Arc<Pool> {
        let size = size.max(1);
        Arc::new(Pool {
            size,
            requests_exclusive,
            cores,
            state: Mutex::new(State {
                outside_requests: 0,
                idle: size,
                next: 0,
                queue: Vec::new(),
                running: HashMap::new(),
            }),
        })
    }

    /// Slots not in use now.
    pub fn idle(&self) -> usize {
        self.state().idle
    }

    /// (slots, makes running, makes waiting for a slot) now.
    pub fn load(&self) -> (usize, usize, usize) {
        let st = self.state();
        (
            self.size,
            self.size - st.idle.min(self.size),
            st.queue.len(),
        )
    }

    /// Waits for a slot for the make of `ctx` (unbounded: bound it with the caller's clock).
    pub async fn acquire(self: &Arc<Self>, ctx: &MakeCtx) -> Slot {
        let mut priority = ctx.priority().clone();
        let (tx, mut rx) = oneshot::channel();
        let id = {
            let mut st = self.state();
            let fg = priority.get() == Priority::Foreground;
            if fg && self.requests_exclusive {
                st.cancel_background();
            }
            let held_back = st.queue.iter().any(is_foreground)
                || (self.requests_exclusive && st.request_runs());
            if st.idle > 0 && (fg || !held_back) {
                let counted = fg && self.cores.is_some();
                let id = st.grant(priority, ctx.cancel().clone(), counted);
                drop(st);
                if counted {
                    self.tell_cores(true);
                }
                return Slot {
                    pool: Arc::clone(self),
                    id,
                };
            }
            let id = st.next;
            st.next += 1;
            st.queue.push(Queued {
                id,
                priority: priority.clone(),
                cancel: ctx.cancel().clone(),
                tx,
            });
            if fg {
                st.take_back_one();
            }
            id
        };
        let _dequeue = Dequeue { pool: self, id };
        let mut raised = priority.get() == Priority::Foreground;
        loop {
            tokio::select! {
                slot = &mut rx => match slot {
                    Ok(slot) => return slot,
                    // The sender is only dropped with the entry, which only we remove.
                    Err(_) => std::future::pending::<()>().await,
                },
                () = priority.foreground(), if !raised => {
                    raised = true;
                    let handed = {
                        let mut st = self.state();
                        if self.requests_exclusive {
                            st.cancel_background();
                        }
                        st.take_back_one();
                        // An idle slot held back from this make while it was background.
                        st.dispatch(self.requests_exclusive, self.cores.is_some())
                    };
                    self.hand(handed);
                }
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked mid-update of plain data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Slot `id` is free: give it to the next make (requests first), or mark it idle.
    fn release(self: &Arc<Self>, id: u64) {
        let (handed, counted) = {
            let mut st = self.state();
            let counted = st.running.remove(&id).is_some_and(|r| r.counted);
            st.idle += 1;
            (
                st.dispatch(self.requests_exclusive, self.cores.is_some()),
                counted,
            )
        };
        if counted {
            self.tell_cores(false);
        }
        self.hand(handed);
    }

    /// Sends the slots [`State::dispatch`] gave out (outside the lock).
    fn hand(self: &Arc<Self>, handed: Vec<Handed>) {
        for h in handed {
            if h.counted {
                self.tell_cores(true);
            }
            // If the waiter just left, the returned slot is dropped and released again.
            let _ = h.tx.send(Slot {
                pool: Arc::clone(self),
                id: h.id,
            });
        }
    }

    /// A request of this light pool starts (`true`) or ends: the cores' pool holds its
    /// background work back meanwhile.
    fn tell_cores(&self, starts: bool) {
        let Some(cores) = &self.cores else { return };
        let handed = {
            let mut st = cores.state();
            if starts {
                st.outside_requests += 1;
                st.cancel_background();
                Vec::new()
            } else {
                st.outside_requests = st.outside_requests.saturating_sub(1);
                st.dispatch(cores.requests_exclusive, cores.cores.is_some())
            }
        };
        cores.hand(handed);
    }
}

fn is_foreground(q: &Queued) -> bool {
    q.priority.get() == Priority::Foreground
}

/// A slot [`State::dispatch`] gave to a waiter, to send outside the lock.
struct Handed {
    tx: oneshot::Sender<Slot>,
    id: u64,
    /// A request to count in the cores' pool.
    counted: bool,
}

impl State {
    /// Gives idle slots to waiting makes: the oldest request first, then the oldest background
    /// make — unless `requests_exclusive` and a request runs. The slots to send are returned;
    /// with `counts`, the requests among them are counted in the cores' pool.
    fn dispatch(&mut self, requests_exclusive: bool, counts: bool) -> Vec<Handed> {
        let mut handed = Vec::new();
        while self.idle > 0 {
            let next = self.queue.iter().position(is_foreground).or_else(|| {
                let background_may_start = !(requests_exclusive && self.request_runs());
                (!self.queue.is_empty() && background_may_start).then_some(0)
            });
            let Some(i) = next else { break };
            let q = self.queue.remove(i);
            let counted = counts && is_foreground(&q);
            let nid = self.grant(q.priority, q.cancel, counted);
            handed.push(Handed {
                tx: q.tx,
                id: nid,
                counted,
            });
        }
        handed
    }

    /// Takes an idle slot for a make: its new id, under which it runs.
    fn grant(&mut self, priority: PriorityWatch, cancel: Cancel, counted: bool) -> u64 {
        let id = self.next;
        self.next += 1;
        self.idle -= 1;
        self.running.insert(
            id,
            Running {
                priority,
                cancel,
                counted,
            },
        );
        id
    }

    /// A request's make holds a slot here, or in a light pool that yields to this one.
    fn request_runs(&self) -> bool {
        self.outside_requests > 0
            || self
                .running
                .values()
                .any(|r| r.priority.get() == Priority::Foreground)
    }

    /// Cancels every running background make (a request takes the machine).
    fn cancel_background(&mut self) {
        for r in self.running.values() {
            if r.priority.get() == Priority::Background && !r.cancel.is_cancelled() {
                tracing::debug!("a request takes the cores back from prefetch");
                r.cancel.cancel();
            }
        }
    }

    /// A request waits and no slot is idle: cancel one running background make, unless enough
    /// are already on their way out for the requests that wait.
    fn take_back_one(&mut self) {
        if self.idle > 0 {
            return;
        }
        let requests = self.queue.iter().filter(|q| is_foreground(q)).count();
        let leaving = self
            .running
            .values()
            .filter(|r| r.cancel.is_cancelled())
            .count();
        if requests <= leaving {
            return;
        }
        if let Some(r) = self
            .running
            .values()
            .find(|r| r.priority.get() == Priority::Background && !r.cancel.is_cancelled())
        {
            tracing::debug!("a request takes a slot back from prefetch");
            r.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ctx(p: Priority) -> MakeCtx {
        MakeCtx::new(p)
    }

    /// Spawns an `acquire` that reports its slot on a channel.
    fn queue(pool: &Arc<Pool>, c: &MakeCtx) -> tokio::task::JoinHandle<Slot> {
        let (pool, c) = (Arc::clone(pool), c.clone());
        tokio::spawn(async move { pool.acquire(&c).await })
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn a_request_goes_before_queued_prefetch() {
        let pool = Pool::new(1);
        let first = pool.acquire(&ctx(Priority::Foreground)).await;
        let prefetch = queue(&pool, &ctx(Priority::Background));
        settle().await;
        let request = queue(&pool, &ctx(Priority::Foreground));
        settle().await;
        assert!(!prefetch.is_finished() && !request.is_finished());
        drop(first);
        let r = request.await.unwrap();
        settle().await;
        assert!(
            !prefetch.is_finished(),
            "the prefetch queued first still waits"
        );
        drop(r);
        let p = prefetch.await.unwrap();
        drop(p);
        assert_eq!(pool.idle(), 1);
    }

    #[tokio::test]
    async fn prefetch_starts_only_on_an_idle_slot() {
        let pool = Pool::new(2);
        let p1 = pool.acquire(&ctx(Priority::Background)).await;
        let r1 = pool.acquire(&ctx(Priority::Foreground)).await;
        assert_eq!(pool.idle(), 0);
        let p2 = queue(&pool, &ctx(Priority::Background));
        settle().await;
        assert!(!p2.is_finished());
        drop(r1);
        let p2 = p2.await.unwrap();
        drop((p1, p2));
        assert_eq!(pool.idle(), 2);
    }

    #[tokio::test]
    async fn a_request_takes_the_slot_back_from_a_running_prefetch() {
        let pool = Pool::new(1);
        let pc = ctx(Priority::Background);
        let running = pool.acquire(&pc).await;
        let queued_prefetch = queue(&pool, &ctx(Priority::Background));
        settle().await;
        let rc = ctx(Priority::Foreground);
        let request = queue(&pool, &rc);
        settle().await;
        assert!(
            pc.cancel().is_cancelled(),
            "the running prefetch is told to stop"
        );
        assert!(!rc.cancel().is_cancelled());
        // Its blocking work ends: the slot goes to the request, not the queued prefetch.
        drop(running);
        let r = request.await.unwrap();
        settle().await;
        assert!(!queued_prefetch.is_finished());
        drop(r);
        drop(queued_prefetch.await.unwrap());
    }

    /// On the cores' pool a prefetch waits while a request runs, even with a slot idle, and
    /// every waiting prefetch starts when the request ends.
    #[tokio::test]
    async fn on_the_cores_prefetch_waits_while_a_request_runs() {
        let pool = Pool::for_cores(3);
        let request = pool.acquire(&ctx(Priority::Foreground)).await;
        let (p1, p2) = (
            queue(&pool, &ctx(Priority::Background)),
            queue(&pool, &ctx(Priority::Background)),
        );
        settle().await;
        assert_eq!(pool.idle(), 2, "two slots idle, and yet");
        assert!(!p1.is_finished() && !p2.is_finished(), "no prefetch runs");
        drop(request);
        let (p1, p2) = (p1.await.unwrap(), p2.await.unwrap());
        assert_eq!(pool.idle(), 1);
        // A plain pool starts prefetch on any idle slot.
        let plain = Pool::new(2);
        let _r = plain.acquire(&ctx(Priority::Foreground)).await;
        let _p = plain.acquire(&ctx(Priority::Background)).await;
        drop((p1, p2));
        assert_eq!(pool.idle(), 3);
    }

    /// On the cores' pool a request that starts cancels every running prefetch, idle slot or
    /// not; a running request is left alone.
    #[tokio::test]
    async fn on_the_cores_a_request_cancels_running_prefetch() {
        let pool = Pool::for_cores(4);
        let (b1, b2) = (ctx(Priority::Background), ctx(Priority::Background));
        let (s1, s2) = (pool.acquire(&b1).await, pool.acquire(&b2).await);
        let first = ctx(Priority::Foreground);
        let f = pool.acquire(&first).await;
        assert!(b1.cancel().is_cancelled() && b2.cancel().is_cancelled());
        let second = ctx(Priority::Foreground);
        let r = pool.acquire(&second).await;
        assert!(!first.cancel().is_cancelled() && !second.cancel().is_cancelled());
        drop((s1, s2, f, r));
        assert_eq!(pool.idle(), 4);
    }

    /// A request of a light pool that yields to the cores' pool stops the prefetch encodes
    /// running there and holds back the waiting ones until it ends; its own prefetch does not.
    #[tokio::test]
    async fn a_light_request_holds_back_prefetch_on_the_cores() {
        let cores = Pool::for_cores(2);
        let light = Pool::yielding_to(4, Arc::clone(&cores));
        let running = ctx(Priority::Background);
        let encode = cores.acquire(&running).await;
        let light_prefetch = light.acquire(&ctx(Priority::Background)).await;
        assert!(
            !running.cancel().is_cancelled(),
            "light prefetch is no request"
        );
        let audio = light.acquire(&ctx(Priority::Foreground)).await;
        assert!(
            running.cancel().is_cancelled(),
            "the prefetch encode is stopped"
        );
        drop(encode);
        let waiting = queue(&cores, &ctx(Priority::Background));
        settle().await;
        assert!(
            !waiting.is_finished(),
            "no prefetch encode while the audio request runs"
        );
        drop(audio);
        drop(waiting.await.unwrap());
        drop(light_prefetch);
        assert_eq!((cores.idle(), light.idle()), (2, 4));
    }

    #[tokio::test]
    async fn a_running_request_is_never_taken_back() {
        let pool = Pool::new(1);
        let first = ctx(Priority::Foreground);
        let slot = pool.acquire(&first).await;
        let second = queue(&pool, &ctx(Priority::Foreground));
        settle().await;
        assert!(!first.cancel().is_cancelled());
        drop(slot);
        drop(second.await.unwrap());
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_the_queue() {
        let pool = Pool::new(1);
        let slot = pool.acquire(&ctx(Priority::Foreground)).await;
        let gone = queue(&pool, &ctx(Priority::Foreground));
        settle().await;
        gone.abort();
        let _ = gone.await;
        drop(slot);
        assert_eq!(
            pool.idle(),
            1,
            "the slot is idle, not handed to the departed"
        );
    }

    /// Through the coalescer: a prefetch queued for the only slot is promoted when a request
    /// joins it, and goes before a prefetch queued earlier.
    #[tokio::test]
    async fn a_prefetch_a_request_joins_goes_before_other_prefetch() {
        use cache::{Coalescer, CoalescerConfig, MemoryCache, NoLease, TokioClock};
        let co = Coalescer::new(
            Arc::new(MemoryCache::new(1 << 20)),
            Arc::new(NoLease),
            Arc::new(TokioClock),
            CoalescerConfig::default(),
        );
        let pool = Pool::new(1);
        let busy = pool.acquire(&ctx(Priority::Foreground)).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let call = |n: u64, p: Priority| {
            let (co, pool, order) = (co.clone(), Arc::clone(&pool), Arc::clone(&order));
            tokio::spawn(async move {
                let key = cache::Key::new(cache::KeyParts {
                    kind: cache::Kind::Segment,
                    source: "pool-test",
                    index_version: 1,
                    plan_version: 1,
                    output_version: 1,
                    rendition: "v1",
                    index: n,
                });
                co.get_or_make_as(&key, Duration::from_secs(60), p, move |ctx| async move {
                    let _slot = pool.acquire(&ctx).await;
                    order.lock().unwrap().push(n);
                    Ok::<_, cache::CoalesceError>(bytes::Bytes::from_static(b"x"))
                })
                .await
            })
        };
        let early = call(1, Priority::Background);
        settle().await;
        let later = call(2, Priority::Background);
        settle().await;
        let request = call(2, Priority::Foreground);
        settle().await;
        drop(busy);
        request.await.unwrap().unwrap();
        later.await.unwrap().unwrap();
        early.await.unwrap().unwrap();
        assert_eq!(*order.lock().unwrap(), vec![2, 1]);
    }
}
