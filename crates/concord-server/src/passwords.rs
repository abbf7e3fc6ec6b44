//! Password hashing on a bounded pool.
//!
//! An argon2id hash at the default cost fills 19 MiB and keeps a core busy for tens of
//! milliseconds. Run on tokio's blocking pool (up to 512 threads), 64 concurrent logins
//! took the server to 2.5 GB. Here a few threads (one per core, at most 4) do every
//! hash and check, each reusing one memory block for all of its jobs, behind a short
//! queue: memory stays flat whatever the load, and a caller past the queue is answered
//! 503 with `Retry-After` at once instead of waiting behind a crowd.

use std::sync::{
    Arc, Mutex,
    mpsc::{Receiver, SyncSender, TrySendError},
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, PasswordHash, Salt},
};
use axum::http::StatusCode;
use rand::RngCore;
use tokio::sync::oneshot;

use crate::{config::PasswordCost, error::ApiError};

/// Seconds a caller refused because the pool is full is told to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// Bytes of a hash's output.
const OUTPUT_LEN: usize = 32;

/// Bytes of a fresh salt.
const SALT_LEN: usize = 16;

/// One job of the pool.
enum Job {
    /// Hash a new password into a PHC string.
    Hash {
        password: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Check a password against a stored PHC string.
    Verify {
        password: String,
        hash: String,
        reply: oneshot::Sender<bool>,
    },
}

/// The pool of argon2 workers of one node.
pub struct Passwords {
    jobs: SyncSender<Job>,
    workers: usize,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// The number of workers `cost.workers` asks for: itself, or with 0 one per core, at
/// most 4.
pub fn worker_count(cost: &PasswordCost) -> usize {
    if cost.workers > 0 {
        return cost.workers;
    }
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(4)
}

impl Passwords {
    /// Starts the workers. They stop when the pool is dropped.
    ///
    /// # Errors
    /// A worker thread could not be started.
    pub fn start(cost: PasswordCost) -> std::io::Result<Self> {
        let (jobs, receiver) = std::sync::mpsc::sync_channel(cost.queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let workers = worker_count(&cost);
        for n in 0..workers {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&receiver, cost))?;
        }
        Ok(Self { jobs, workers })
    }

    /// Hashes `password` with argon2id at the configured cost, under a fresh salt.
    ///
    /// # Errors
    /// 503 with `Retry-After` when the pool and its queue are full; 500 if hashing
    /// fails.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        match answer.await {
            Ok(Ok(hash)) => Ok(hash),
            Ok(Err(why)) => Err(ApiError::internal(&std::io::Error::other(why))),
            Err(err) => Err(ApiError::internal(&err)),
        }
    }

    /// Whether `password` matches the PHC string `hash` (argon2 of any variant and
    /// cost; anything unreadable does not match).
    ///
    /// # Errors
    /// 503 with `Retry-After` when the pool and its queue are full; 500 if the pool
    /// has stopped.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify {
            password,
            hash,
            reply,
        })?;
        answer.await.map_err(|err| ApiError::internal(&err))
    }

    fn submit(&self, job: Job) -> Result<(), ApiError> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(busy()),
            Err(TrySendError::Disconnected(_)) => Err(ApiError::internal(&std::io::Error::other(
                "password workers stopped",
            ))),
        }
    }
}

/// The answer to a caller the pool cannot take.
fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many password checks in progress; retry shortly",
    )
    .with_retry_after(RETRY_AFTER_SECS)
}

/// A worker: takes jobs until the pool is dropped, all in one memory block, taken at
/// its first job (an idle node holds none) and grown only when a stored hash asks for
/// more than any before.
fn work(receiver: &Mutex<Receiver<Job>>, cost: PasswordCost) {
    let params = params(cost);
    let mut memory = Vec::new();
    loop {
        // The lock is held only while waiting: the next idle worker waits behind it.
        let job = match receiver.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        match job {
            Job::Hash { password, reply } => {
                let _ = reply.send(hash_with(&password, &params, &mut memory));
            }
            Job::Verify {
                password,
                hash,
                reply,
            } => {
                let _ = reply.send(verify_with(&password, &hash, &mut memory));
            }
        }
    }
}

/// The configured argon2id parameters (the crate's defaults if they are invalid).
fn params(cost: PasswordCost) -> Params {
    Params::new(cost.memory_kib, cost.iterations, 1, Some(OUTPUT_LEN)).unwrap_or_default()
}

/// The `count` first blocks of `memory`, grown to hold them.
fn blocks(memory: &mut Vec<Block>, count: usize) -> &mut [Block] {
    if memory.len() < count {
        memory.resize(count, Block::default());
    }
    &mut memory[..count]
}

fn hash_with(password: &str, params: &Params, memory: &mut Vec<Block>) -> Result<String, String> {
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            blocks(memory, params.block_count()),
        )
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params
            .try_into()
            .map_err(|e: argon2::password_hash::Error| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

fn verify_with(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    if argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            blocks(memory, params.block_count()),
        )
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|actual| actual == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordCost {
        PasswordCost {
            memory_kib: 1024,
            iterations: 1,
            workers: 1,
            queue: 4,
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_read_as_argon2id() {
        let pool = Passwords::start(cheap()).unwrap();
        let hash = pool.hash("correct-horse-42".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(
            pool.verify("correct-horse-42".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !pool
                .verify("wrong-horse-42".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(!pool.verify("x".into(), "not a hash".into()).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_by_the_crate_itself_verify() {
        use argon2::PasswordHasher;
        let params = Params::new(2048, 2, 1, None).unwrap();
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"battery-staple-7")
            .unwrap()
            .to_string();
        let pool = Passwords::start(cheap()).unwrap();
        assert!(
            pool.verify("battery-staple-7".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(!pool.verify("battery-staple-8".into(), hash).await.unwrap());
    }
}
