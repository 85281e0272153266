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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cache::{Cancel, MakeCtx, Priority, PriorityWatch};
use tokio::sync::oneshot;

/// A pool of job slots (one per concurrent make). Share it as `Arc<Pool>`.
pub struct Pool {
    size: usize,
    state: Mutex<State>,
}

struct State {
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
        let size = size.max(1);
        Arc::new(Pool {
            size,
            state: Mutex::new(State {
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
            let id = st.next;
            st.next += 1;
            let fg = priority.get() == Priority::Foreground;
            let request_waits = st.queue.iter().any(is_foreground);
            if st.idle > 0 && (fg || !request_waits) {
                st.idle -= 1;
                st.running.insert(
                    id,
                    Running {
                        priority,
                        cancel: ctx.cancel().clone(),
                    },
                );
                return Slot {
                    pool: Arc::clone(self),
                    id,
                };
            }
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
                    self.state().take_back_one();
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
        let handed = {
            let mut st = self.state();
            st.running.remove(&id);
            let next = st
                .queue
                .iter()
                .position(is_foreground)
                .or(if st.queue.is_empty() { None } else { Some(0) });
            match next {
                None => {
                    st.idle += 1;
                    None
                }
                Some(i) => {
                    let q = st.queue.remove(i);
                    let nid = st.next;
                    st.next += 1;
                    st.running.insert(
                        nid,
                        Running {
                            priority: q.priority,
                            cancel: q.cancel,
                        },
                    );
                    Some((q.tx, nid))
                }
            }
        };
        if let Some((tx, nid)) = handed {
            // If the waiter just left, the returned slot is dropped and released again.
            let _ = tx.send(Slot {
                pool: Arc::clone(self),
                id: nid,
            });
        }
    }
}

fn is_foreground(q: &Queued) -> bool {
    q.priority.get() == Priority::Foreground
}

impl State {
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
