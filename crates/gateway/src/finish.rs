//! A request's work runs inside its connection's task, yet survives the connection.
//!
//! hyper drops a request's future when the bot hangs up, but a request that was forwarded must
//! still be journaled and its reservation settled. A task of its own per request guaranteed
//! that, at a cost the benchmark could see (a second task scheduled and woken per request, and
//! the request's whole state copied into it: about a tenth of the gateway's CPU per order).
//! [`Finish`] polls the work where it is instead, and only when it is dropped unfinished does
//! it move the work (boxed, so moving it is moving a pointer) onto a task of its own to end
//! there. A panic in the work is caught and returned, as a task's would be.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The work panicked (the panic's message went to the panic hook, as a task's would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panicked;

/// See the module's documentation.
pub struct Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    work: Option<Pin<Box<F>>>,
}

impl<F> Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub fn new(work: F) -> Self {
        Finish {
            work: Some(Box::pin(work)),
        }
    }
}

impl<F> Future for Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Finish` is Unpin (it holds a box), so its field may be reached through the pin.
        let Some(work) = self.work.as_mut() else {
            // Polled again after it ended (a caller's bug: `answer` awaits it once). Its output
            // is gone, so it never ends twice; it stays pending.
            debug_assert!(false, "Finish polled after it ended");
            return Poll::Pending;
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                self.work = None;
                Poll::Ready(Ok(out))
            }
            Err(_) => {
                self.work = None;
                Poll::Ready(Err(Panicked))
            }
        }
    }
}

impl<F> Drop for Finish<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        // Outside a runtime there is nowhere to finish, and a runtime that is shutting down
        // drops a task as soon as it is spawned: either way the work is dropped, as a task of
        // its own would be then (a forwarded order's reservation comes back at the next start
        // as a `recovery` entry).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            drop(rt.spawn(async move {
                drop(work.await);
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn finished_work_returns_its_output() {
        assert_eq!(Finish::new(async { 7 }).await, Ok(7));
    }

    #[tokio::test]
    async fn a_panic_is_returned_not_raised() {
        let out = Finish::new(async {
            tokio::task::yield_now().await;
            panic!("boom (this panic is the test's)");
        })
        .await;
        let out: Result<(), Panicked> = out;
        assert_eq!(out, Err(Panicked));
    }

    #[tokio::test]
    async fn work_dropped_unfinished_ends_on_a_task_of_its_own() {
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        let work = Finish::new(async move {
            started_tx.send(()).unwrap();
            drop(released.await);
            ended_tx.send("ended").unwrap();
        });
        // The caller gives up (as hyper does when the bot hangs up) once the work is under way.
        let caller = tokio::spawn(work);
        started.await.unwrap();
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        release.send(()).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), ended).await;
        assert_eq!(ended.unwrap().unwrap(), "ended");
    }

    #[tokio::test]
    async fn work_dropped_before_its_first_poll_still_runs() {
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        drop(Finish::new(async move {
            ended_tx.send(()).unwrap();
        }));
        let ended = tokio::time::timeout(Duration::from_secs(5), ended).await;
        assert!(ended.unwrap().is_ok());
    }
}
