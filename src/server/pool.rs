//! A fixed pool of worker threads on `std`. Workers share one job queue; a job that panics is
//! caught so the worker lives on. Dropping the pool closes the queue and joins every worker.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Stack size of each worker: sessions keep their big buffers on the heap.
const WORKER_STACK_BYTES: usize = 256 * 1024;

pub struct ThreadPool {
    workers: Vec<JoinHandle<()>>,
    sender: Option<mpsc::Sender<Job>>,
}

impl ThreadPool {
    /// Starts `size` workers named `<name>-<n>`; fails if the OS refuses a thread.
    pub fn new(size: usize, name: &str) -> io::Result<ThreadPool> {
        assert!(size > 0, "a pool needs at least one worker");
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut workers = Vec::with_capacity(size);
        for n in 0..size {
            let receiver = Arc::clone(&receiver);
            let worker = thread::Builder::new()
                .name(format!("{name}-{n}"))
                .stack_size(WORKER_STACK_BYTES)
                .spawn(move || {
                    loop {
                        // The guard is a temporary: the lock is released before the job runs.
                        let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => {
                                let _ = catch_unwind(AssertUnwindSafe(job));
                            }
                            Err(_) => break,
                        }
                    }
                })?;
            workers.push(worker);
        }
        Ok(ThreadPool { workers, sender: Some(sender) })
    }

    /// Queues `job` for the next free worker.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(sender) = &self.sender {
            // Sending fails only once every worker is gone, which `Drop` alone causes.
            let _ = sender.send(Box::new(job));
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.sender.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_job_and_survives_panics() {
        let (done, results) = mpsc::channel();
        {
            let pool = ThreadPool::new(2, "test").unwrap();
            pool.execute(|| panic!("a job that panics"));
            for n in 0..10 {
                let done = done.clone();
                pool.execute(move || done.send(n).unwrap());
            }
        }
        let mut seen: Vec<i32> = results.try_iter().collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }
}
