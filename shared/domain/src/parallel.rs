//! CPU work on many independent items spread over the cores: the audit export checks the chains
//! of a page of records and renders them, which is most of its work, and a single task would use
//! one core of several.

use crate::error::{Error, Result};

/// `f` of each of `items`, in their order, on tokio's blocking pool in as many chunks as there are
/// cores (one chunk, on one core, where that is all there is).
pub async fn map_in_chunks<T, U, F>(items: Vec<T>, f: F) -> Result<Vec<U>>
where
    T: Send + 'static,
    U: Send + 'static,
    F: Fn(T) -> U + Clone + Send + 'static,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let size = items.len().div_ceil(cores).max(1);
    let mut chunks = Vec::with_capacity(cores);
    let mut rest = items;
    while rest.len() > size {
        let tail = rest.split_off(size);
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    chunks.push(rest);
    let workers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let f = f.clone();
            tokio::task::spawn_blocking(move || chunk.into_iter().map(f).collect::<Vec<U>>())
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.map_err(|e| Error::internal("a worker thread failed", e))?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::map_in_chunks;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_item_is_mapped_once_in_order() {
        for n in [0usize, 1, 2, 3, 7, 200] {
            let items: Vec<usize> = (0..n).collect();
            let mapped = map_in_chunks(items, |i| i * 10).await.unwrap();
            assert_eq!(mapped, (0..n).map(|i| i * 10).collect::<Vec<_>>(), "{n} items");
        }
    }
}
