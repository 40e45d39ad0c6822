//! Accounting a result in the memory pool for as long as it lives: its buffers hold the memory
//! reservation, released when the last of them is dropped.

use std::sync::{Arc, Mutex};

use arrow::array::{make_array, ArrayData, ArrayRef};
use arrow::buffer::Buffer;
use datafusion::error::Result as DfResult;
use datafusion::execution::memory_pool::MemoryReservation;

/// A buffer of a result and the reservation accounting it.
struct Held {
    buffer: Buffer,
    _reservation: Arc<Mutex<MemoryReservation>>,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_slice()
    }
}

/// `array` with its buffers holding `reservation` (resized to the array's size): the pool
/// accounts the result until its last buffer is dropped. When the array cannot be rebuilt, it
/// is returned as it is (unaccounted).
pub(super) fn accounted(array: ArrayRef, reservation: MemoryReservation) -> ArrayRef {
    reservation.resize(array.get_array_memory_size());
    let held = Arc::new(Mutex::new(reservation));
    match rebind(&array.to_data(), &held) {
        Ok(data) => make_array(data),
        Err(_) => array,
    }
}

fn rebind(data: &ArrayData, held: &Arc<Mutex<MemoryReservation>>) -> DfResult<ArrayData> {
    let buffers = data
        .buffers()
        .iter()
        .map(|b| {
            Buffer::from(bytes::Bytes::from_owner(Held {
                buffer: b.clone(),
                _reservation: held.clone(),
            }))
        })
        .collect::<Vec<_>>();
    let children = data
        .child_data()
        .iter()
        .map(|c| rebind(c, held))
        .collect::<DfResult<Vec<_>>>()?;
    Ok(data
        .clone()
        .into_builder()
        .buffers(buffers)
        .child_data(children)
        .build()?)
}
