//! [`ToArgs`]: how Rust values become command arguments.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

/// Bytes of encoded arguments a command holds without allocating.
const INLINE: usize = 64;

/// `Bytes` arguments at least this long are kept by reference rather than copied into the
/// command: the only copy is the one into the connection's write buffer.
const SHARE_FROM: usize = 16 * 1024;

/// The encoded arguments of one command, as RESP bulk strings, ready to be copied into the
/// connection's write buffer behind an array header. Large `Bytes` arguments are held by
/// reference, not copied.
#[derive(Default)]
pub struct ArgBuf {
    /// Inline up to `INLINE` bytes: most commands (`GET key`) never allocate.
    buf: SmallVec<[u8; INLINE]>,
    /// Large arguments held by reference: where in `buf` each belongs, and its bytes.
    shared: Vec<(usize, Bytes)>,
    count: usize,
    /// An argument that could not be encoded (a value serde refused): the command fails
    /// with it instead of being sent.
    error: Option<Box<crate::error::Error>>,
}

impl Clone for ArgBuf {
    fn clone(&self) -> Self {
        ArgBuf {
            buf: self.buf.clone(),
            shared: self.shared.clone(),
            count: self.count,
            error: self.error.as_ref().map(|e| Box::new(e.duplicate())),
        }
    }
}

impl PartialEq for ArgBuf {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.iter().eq(other.iter())
    }
}

/// A spilled buffer goes back to its thread's pool, for the next long command.
impl Drop for ArgBuf {
    fn drop(&mut self) {
        if self.buf.spilled() {
            super::arg_pool::give(std::mem::take(&mut self.buf).into_vec());
        }
    }
}

impl ArgBuf {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut args = ArgBuf::default();
        args.reserve(bytes);
        args
    }

    /// Makes room for `additional` more bytes; past the inline capacity the buffer comes
    /// from the thread's pool: a SET of a 1 KiB value allocates nothing in steady state.
    fn reserve(&mut self, additional: usize) {
        let needed = self.buf.len() + additional;
        if !self.buf.spilled() && needed > INLINE {
            let mut heap = super::arg_pool::take(needed.max(2 * INLINE));
            heap.extend_from_slice(&self.buf);
            self.buf = SmallVec::from_vec(heap);
        } else {
            self.buf.reserve(additional);
        }
    }

    /// Records that an argument could not be encoded; the command will fail with `error`.
    pub fn fail(&mut self, error: crate::error::Error) {
        self.error.get_or_insert(Box::new(error));
    }

    /// The first encoding failure, if any.
    pub(crate) fn take_error(&mut self) -> Option<crate::error::Error> {
        self.error.take().map(|e| *e)
    }

    /// Appends one argument, binary-safe.
    pub fn push(&mut self, arg: &[u8]) {
        let mut len = itoa::Buffer::new();
        let len = len.format(arg.len()).as_bytes();
        let total = arg.len() + len.len() + 5;
        self.reserve(total);
        // One resize and plain copies: `extend_from_slice` on a SmallVec is an insert, a
        // move of the (empty) tail and a copy, for each of the five pieces.
        let at = self.buf.len();
        self.buf.resize(at + total, b'\n');
        let out = &mut self.buf[at..];
        out[0] = b'$';
        let (digits, rest) = out[1..].split_at_mut(len.len());
        digits.copy_from_slice(len);
        rest[0] = b'\r';
        rest[2..2 + arg.len()].copy_from_slice(arg);
        rest[2 + arg.len()] = b'\r';
        self.count += 1;
    }

    /// Appends one argument held by reference when it is large (no copy until the write).
    pub fn push_bytes(&mut self, arg: &Bytes) {
        if arg.len() < SHARE_FROM {
            return self.push(arg);
        }
        self.reserve(24);
        self.buf.push(b'$');
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(arg.len()).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self.shared.push((self.buf.len(), arg.clone()));
        self.buf.extend_from_slice(b"\r\n");
        self.count += 1;
    }

    /// Appends an integer as its decimal digits.
    pub fn push_int(&mut self, n: impl itoa::Integer) {
        self.push(itoa::Buffer::new().format(n).as_bytes());
    }

    /// How many arguments have been written.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no argument has been written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The arguments, decoded back from the buffer.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut pos = 0;
        let mut shared = self.shared.iter().peekable();
        (0..self.count).map(move |_| {
            // `$<digits>\r\n`: written by `push`, so well formed.
            let mut len = 0usize;
            let mut i = pos + 1;
            while let Some(&d) = self.buf.get(i).filter(|d| d.is_ascii_digit()) {
                len = len * 10 + (d - b'0') as usize;
                i += 1;
            }
            let start = i + 2;
            match shared.next_if(|(at, _)| *at == start) {
                Some((_, bytes)) => {
                    pos = start + 2;
                    &bytes[..]
                }
                None => {
                    pos = start + len + 2;
                    &self.buf[start..start + len]
                }
            }
        })
    }

    /// The `i`-th argument, decoded back from the buffer (slow; for routing and diagnostics).
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i)
    }

    /// Appends every argument of `other` (and its encoding failure, if any).
    pub(crate) fn append(&mut self, other: &ArgBuf) {
        let base = self.buf.len();
        self.reserve(other.buf.len());
        self.buf.extend_from_slice(&other.buf);
        self.shared
            .extend(other.shared.iter().map(|(at, b)| (base + at, b.clone())));
        self.count += other.count;
        if let Some(e) = &other.error {
            self.fail(e.duplicate());
        }
    }

    /// The arguments as they go on the wire, without the array header, shared ones copied
    /// in: a command's identity, for the client-side cache.
    pub(crate) fn encoded(&self) -> Bytes {
        if self.shared.is_empty() {
            return Bytes::copy_from_slice(&self.buf);
        }
        let total = self.buf.len() + self.shared.iter().map(|(_, b)| b.len()).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        let mut pos = 0;
        for (at, bytes) in &self.shared {
            out.extend_from_slice(&self.buf[pos..*at]);
            out.extend_from_slice(bytes);
            pos = *at;
        }
        out.extend_from_slice(&self.buf[pos..]);
        Bytes::from(out)
    }

    /// True when [`encoded`](Self::encoded) would equal `other`, without building it.
    pub(crate) fn encoded_eq(&self, other: &[u8]) -> bool {
        let mut rest = other;
        let mut pos = 0;
        for (at, bytes) in &self.shared {
            for part in [&self.buf[pos..*at], &bytes[..]] {
                match rest.strip_prefix(part) {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            pos = *at;
        }
        rest == &self.buf[pos..]
    }

    /// Writes the command: the array header, then each argument, copying shared ones in
    /// place from where they are held.
    pub(crate) fn encode_into(&self, out: &mut BytesMut) {
        crate::resp::array_header(out, self.count);
        let mut pos = 0;
        for (at, bytes) in &self.shared {
            out.put_slice(&self.buf[pos..*at]);
            out.put_slice(bytes);
            pos = *at;
        }
        out.put_slice(&self.buf[pos..]);
    }
}

/// A value that can be sent as zero or more command arguments.
///
/// Strings and bytes go as-is (binary-safe), numbers as their decimal text, `bool` as `1`/`0`.
/// Collections and tuples write one argument per element (maps write key, value, ...), and
/// `None` writes nothing, so `cmd("DEL").arg(&keys)` and `cmd("HSET").arg("h").arg(&map)` work.
/// `u8` is deliberately not an argument type: `Vec<u8>` and `&[u8]` are byte strings.
pub trait ToArgs {
    /// Appends this value's arguments.
    fn write_args(&self, out: &mut ArgBuf);
}

impl std::fmt::Debug for ArgBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments may be secrets or large values: the count says enough.
        write!(f, "ArgBuf({} args)", self.count)
    }
}

/// Arguments encoded earlier, appended as they are.
impl ToArgs for ArgBuf {
    fn write_args(&self, out: &mut ArgBuf) {
        out.append(self);
    }
}

/// No arguments at all: for an empty list, e.g. EVAL with no keys.
impl ToArgs for () {
    fn write_args(&self, _: &mut ArgBuf) {}
}

impl<T: ToArgs + ?Sized> ToArgs for &T {
    fn write_args(&self, out: &mut ArgBuf) {
        (**self).write_args(out)
    }
}

impl<T: ToArgs + ?Sized> ToArgs for Box<T> {
    fn write_args(&self, out: &mut ArgBuf) {
        (**self).write_args(out)
    }
}

impl ToArgs for str {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push(self.as_bytes())
    }
}

impl ToArgs for String {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push(self.as_bytes())
    }
}

impl ToArgs for [u8] {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push(self)
    }
}

impl<const N: usize> ToArgs for [u8; N] {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push(self)
    }
}

impl ToArgs for Vec<u8> {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push(self)
    }
}

/// The one argument `value` writes, as bytes: for values stored as one field (a queue
/// message's result). An encoding failure, or a value writing other than one argument, is
/// an error.
pub(crate) fn one_arg(value: &impl ToArgs) -> crate::error::Result<Bytes> {
    let mut buf = ArgBuf::default();
    value.write_args(&mut buf);
    if let Some(e) = buf.take_error() {
        return Err(e);
    }
    match (buf.len(), buf.get(0)) {
        (1, Some(arg)) => Ok(Bytes::copy_from_slice(arg)),
        (n, _) => Err(crate::error::Error::type_error(format!(
            "expected exactly one value; this one wrote {n} arguments"
        ))),
    }
}

impl ToArgs for Bytes {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push_bytes(self)
    }
}

impl ToArgs for BytesMut {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push(self)
    }
}

macro_rules! int_args {
    ($($t:ty),*) => {$(
        impl ToArgs for $t {
            fn write_args(&self, out: &mut ArgBuf) {
                out.push_int(*self)
            }
        }
    )*};
}
int_args!(i8, i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

macro_rules! float_args {
    ($($t:ty),*) => {$(
        impl ToArgs for $t {
            fn write_args(&self, out: &mut ArgBuf) {
                // ryu writes the shortest text that reads back to the same float, and
                // `inf`/`-inf`, which Redis accepts in scores.
                out.push(ryu::Buffer::new().format(*self).as_bytes())
            }
        }
    )*};
}
float_args!(f32, f64);

impl ToArgs for bool {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push(if *self { b"1" } else { b"0" })
    }
}

impl<T: ToArgs> ToArgs for Option<T> {
    fn write_args(&self, out: &mut ArgBuf) {
        if let Some(v) = self {
            v.write_args(out)
        }
    }
}

impl<T: ToArgs> ToArgs for [T] {
    fn write_args(&self, out: &mut ArgBuf) {
        self.iter().for_each(|v| v.write_args(out))
    }
}

impl<T: ToArgs, const N: usize> ToArgs for [T; N] {
    fn write_args(&self, out: &mut ArgBuf) {
        self.iter().for_each(|v| v.write_args(out))
    }
}

impl<T: ToArgs> ToArgs for Vec<T> {
    fn write_args(&self, out: &mut ArgBuf) {
        self.iter().for_each(|v| v.write_args(out))
    }
}

impl<T: ToArgs, S> ToArgs for HashSet<T, S> {
    fn write_args(&self, out: &mut ArgBuf) {
        self.iter().for_each(|v| v.write_args(out))
    }
}

impl<T: ToArgs> ToArgs for BTreeSet<T> {
    fn write_args(&self, out: &mut ArgBuf) {
        self.iter().for_each(|v| v.write_args(out))
    }
}

impl<K: ToArgs, V: ToArgs, S> ToArgs for HashMap<K, V, S> {
    fn write_args(&self, out: &mut ArgBuf) {
        for (k, v) in self {
            k.write_args(out);
            v.write_args(out);
        }
    }
}

impl<K: ToArgs, V: ToArgs> ToArgs for BTreeMap<K, V> {
    fn write_args(&self, out: &mut ArgBuf) {
        for (k, v) in self {
            k.write_args(out);
            v.write_args(out);
        }
    }
}

macro_rules! tuple_args {
    ($($name:ident)+) => {
        impl<$($name: ToArgs),+> ToArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn write_args(&self, out: &mut ArgBuf) {
                let ($($name,)+) = self;
                $($name.write_args(out);)+
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A B);
tuple_args!(A B C);
tuple_args!(A B C D);
tuple_args!(A B C D E);
tuple_args!(A B C D E F);
tuple_args!(A B C D E F G);
tuple_args!(A B C D E F G H);

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: impl ToArgs) -> Vec<Vec<u8>> {
        let mut b = ArgBuf::default();
        v.write_args(&mut b);
        (0..b.len()).map(|i| b.get(i).unwrap().to_vec()).collect()
    }

    #[test]
    fn a_command_too_long_to_be_inline_reuses_the_last_ones_buffer() {
        let set = |value: &[u8]| {
            let mut b = ArgBuf::default();
            ("SET", "key:1", value).write_args(&mut b);
            b
        };
        let first = set(&[b'v'; 64]);
        assert!(first.buf.spilled());
        let at = first.buf.as_ptr();
        let mut out = BytesMut::new();
        first.encode_into(&mut out);
        drop(first);
        let second = set(&[b'w'; 70]);
        assert_eq!(second.buf.as_ptr(), at, "the buffer was not reused");
        let mut again = BytesMut::new();
        second.encode_into(&mut again);
        assert_eq!(
            &again[..],
            b"*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$70\r\n"
                .iter()
                .chain([b'w'; 70].iter())
                .chain(b"\r\n")
                .copied()
                .collect::<Vec<u8>>()
        );
        assert_eq!(&out[out.len() - 66..out.len() - 2], &[b'v'; 64][..]);
    }

    #[test]
    fn large_bytes_are_shared_and_encode_like_copied_ones() {
        let big = Bytes::from(vec![7u8; super::SHARE_FROM + 5]);
        let mut shared = ArgBuf::default();
        ("SET", "k", &big, "EX", 10).write_args(&mut shared);
        let mut copied = ArgBuf::default();
        ("SET", "k", &big[..], "EX", 10).write_args(&mut copied);
        assert_eq!(shared.shared.len(), 1);
        assert!(copied.shared.is_empty());
        assert_eq!(shared, copied);
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        shared.encode_into(&mut a);
        copied.encode_into(&mut b);
        assert_eq!(a, b);
        let mut joined = ArgBuf::default();
        joined.push(b"x");
        joined.append(&shared);
        assert_eq!(joined.get(3).unwrap(), &big[..]);
        assert_eq!(joined.get(5).unwrap(), b"10");
    }

    #[test]
    fn scalars_and_collections_flatten_to_arguments() {
        assert_eq!(args("k"), vec![b"k".to_vec()]);
        assert_eq!(args(&b"\0\r\n"[..]), vec![b"\0\r\n".to_vec()]);
        assert_eq!(args(vec![1u32, 2]), vec![b"1".to_vec(), b"2".to_vec()]);
        assert_eq!(args(-7i64), vec![b"-7".to_vec()]);
        assert_eq!(args(1.5f64), vec![b"1.5".to_vec()]);
        assert_eq!(args(f64::INFINITY), vec![b"inf".to_vec()]);
        assert_eq!(args(None::<&str>), Vec::<Vec<u8>>::new());
        assert_eq!(
            args(("a", 1, true)),
            vec![b"a".to_vec(), b"1".to_vec(), b"1".to_vec()]
        );
        let m: BTreeMap<&str, i32> = [("f", 1), ("g", 2)].into();
        assert_eq!(
            args(m),
            vec![b"f".to_vec(), b"1".to_vec(), b"g".to_vec(), b"2".to_vec()]
        );
        assert_eq!(args(vec![b"ab".to_vec()]), vec![b"ab".to_vec()]);
    }
}
