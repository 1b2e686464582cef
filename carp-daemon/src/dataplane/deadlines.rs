//! The masters' fail-silent deadlines as carpd writes them: the `carp_deadlines` array
//! (`BPF_F_MMAPABLE`) mapped into carpd's memory, and which slot each `carp_vhids` entry
//! (or balanced node) uses.
//!
//! A master pushes its deadline forward with every advert. Through the mapping that is one
//! store to memory the program reads directly; a map update would be a `bpf()` system call
//! per advert (about a tenth of what a 1-vhid master costs per advert at 1 s timers). The
//! `carp_vhids` entry itself is rewritten only when the state changes.
//!
//! The mapping is shared ([`DeadlineArray`] behind an `Arc`): the advert pacer
//! (`daemon::pacer`) renews a steady master's deadline from its own thread, through a
//! [`DeadlineCell`] for that master's slot.
use std::{
    collections::HashMap,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use aya::maps::{Array, IterableMap, MapData};
use carp_common::maps::{MAX_DEADLINES, VhidKey, pin};

use super::DataplaneError;

/// The mapped array and the slots handed out.
pub struct Deadlines {
    array: Arc<DeadlineArray>,
    slots: HashMap<VhidKey, u32>,
    /// Slots given back, reused before `next`.
    free: Vec<u32>,
    next: u32,
}

/// The `carp_deadlines` values mapped into carpd's memory.
pub struct DeadlineArray {
    /// Keeps the map's file descriptor (and so the mapping's map) open.
    _map: Array<MapData, u64>,
    base: NonNull<AtomicU64>,
    mapped_bytes: usize,
}

// SAFETY: the mapping is memory of this process owned by the struct; every access is an
// atomic load or store, so it may also be shared between threads.
unsafe impl Send for DeadlineArray {}
// SAFETY: as above.
unsafe impl Sync for DeadlineArray {}

/// One slot of the array, for a writer on another thread (the advert pacer).
#[derive(Clone)]
pub struct DeadlineCell {
    array: Arc<DeadlineArray>,
    slot: u32,
}

impl DeadlineCell {
    /// Sets the slot's deadline (CLOCK_MONOTONIC nanoseconds), as [`Deadlines::store`].
    pub fn store(&self, deadline_ns: u64) {
        self.array.store(self.slot, deadline_ns);
    }
}

impl Deadlines {
    pub fn new(map: Array<MapData, u64>) -> Result<Self, DataplaneError> {
        Ok(Self {
            array: Arc::new(DeadlineArray::new(map)?),
            slots: HashMap::new(),
            free: Vec::new(),
            next: 0,
        })
    }

    /// The slot `key` has (none is given here), for a writer on another thread.
    pub fn cell(&self, key: &VhidKey) -> Option<DeadlineCell> {
        self.slots.get(key).map(|slot| DeadlineCell {
            array: Arc::clone(&self.array),
            slot: *slot,
        })
    }

    /// The slot of `key`, given one if it has none yet.
    pub fn slot(&mut self, key: VhidKey) -> Result<u32, DataplaneError> {
        if let Some(slot) = self.slots.get(&key) {
            return Ok(*slot);
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None if self.next < MAX_DEADLINES => {
                self.next += 1;
                self.next - 1
            }
            None => return Err(DataplaneError::DeadlinesFull(MAX_DEADLINES)),
        };
        self.store(slot, 0);
        self.slots.insert(key, slot);
        Ok(slot)
    }

    /// Sets a slot's deadline (CLOCK_MONOTONIC nanoseconds; 0: past).
    pub fn store(&self, slot: u32, deadline_ns: u64) {
        self.array.store(slot, deadline_ns);
    }

    /// A slot's deadline as the program reads it.
    pub fn load(&self, slot: u32) -> Option<u64> {
        self.array.load(slot)
    }

    /// Takes `key`'s slot back, its deadline past.
    pub fn release(&mut self, key: &VhidKey) {
        if let Some(slot) = self.slots.remove(key) {
            self.store(slot, 0);
            self.free.push(slot);
        }
    }

    /// Every deadline past and every slot free (a start that forgets what an earlier run
    /// left, see `Dataplane::silence_all`).
    pub fn clear(&mut self) {
        for slot in 0..MAX_DEADLINES {
            self.store(slot, 0);
        }
        self.slots.clear();
        self.free.clear();
        self.next = 0;
    }
}

impl DeadlineArray {
    fn new(map: Array<MapData, u64>) -> Result<Self, DataplaneError> {
        if map.len() < MAX_DEADLINES {
            return Err(DataplaneError::Mmap {
                map: pin::DEADLINES,
                source: std::io::Error::other(format!(
                    "{} slots, {MAX_DEADLINES} needed (pinned by another build?)",
                    map.len()
                )),
            });
        }
        let fd = IterableMap::map(&map).fd().as_fd().as_raw_fd();
        let bytes = MAX_DEADLINES as usize * size_of::<u64>();
        let page = super::page_size() as usize;
        let mapped_bytes = bytes.div_ceil(page) * page;
        // SAFETY: a shared read-write mapping of an mmapable array map's values (the kernel
        // refuses one of any other map, which is then reported); unmapped in `drop`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(DataplaneError::Mmap {
                map: pin::DEADLINES,
                source: std::io::Error::last_os_error(),
            });
        }
        let base = NonNull::new(ptr.cast::<AtomicU64>()).ok_or(DataplaneError::Mmap {
            map: pin::DEADLINES,
            source: std::io::Error::other("mmap returned NULL"),
        })?;
        Ok(Self {
            _map: map,
            base,
            mapped_bytes,
        })
    }

    fn store(&self, slot: u32, deadline_ns: u64) {
        if let Some(cell) = self.cell(slot) {
            // Release: a MASTER entry written after this store never meets an older deadline.
            cell.store(deadline_ns, Ordering::Release);
        }
    }

    fn load(&self, slot: u32) -> Option<u64> {
        self.cell(slot).map(|cell| cell.load(Ordering::Acquire))
    }

    fn cell(&self, slot: u32) -> Option<&AtomicU64> {
        if slot >= MAX_DEADLINES {
            return None;
        }
        // SAFETY: in bounds of the mapping (MAX_DEADLINES u64s), which lives as long as self;
        // u64 slots are 8-byte aligned from the page-aligned start.
        Some(unsafe { &*self.base.as_ptr().add(slot as usize) })
    }
}

impl Drop for DeadlineArray {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of that length, no longer referenced.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.mapped_bytes);
        }
    }
}
