/// A place in the kernel a capture can record: a tracepoint by name, or a kprobe/kretprobe on a function.
///
///     p:highmem/kunmap_local_indexed kunmap_local_indexed vaddr=%ax:x32    -> .kprobe("kunmap_local_indexed")
///     r:highmem/kmap_high_ret kmap_high vaddr=$retval:x32                  -> .kretprobe("kmap_high")
public enum ProbePoint: Hashable, Sendable, CustomStringConvertible {
    case tracepoint(String)
    /// Every tracepoint whose name starts with this (`sys_enter_`).
    case tracepointPrefix(String)
    case kprobe(String)
    case kretprobe(String)

    /// As `kprobe_events` and `perf probe` spell it: `sched_switch`, `sys_enter_*`, `kmap_high`, `kmap_high%return`.
    public var description: String {
        switch self {
        case let .tracepoint(n): return n
        case let .tracepointPrefix(p): return p + "*"
        case let .kprobe(f): return f
        case let .kretprobe(f): return f + "%return"
        }
    }
}
