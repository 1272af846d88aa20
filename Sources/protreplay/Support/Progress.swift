#if canImport(Glibc)
import Glibc
#endif

/// Progress of a long run on stderr: bytes read of the total, events/s and the time left, redrawn on
/// one line at most five times a second. Silent when stderr is not a terminal or with `--quiet`, so
/// scripts, CI logs and pipes never see it.
final class Progress {
    private let total: Int?
    private let label: String
    private let start: Double
    private var last: Double = 0
    private var drawn = false

    /// nil when progress should not be shown.
    init?(quiet: Bool, total: Int?, label: String, force: Bool = false) {
        guard !quiet, force || isatty(2) != 0 else { return nil }
        self.total = total
        self.label = label
        start = Progress.now()
        last = start
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// The line for `bytes` read and `events` seen after `elapsed` seconds.
    static func line(label: String, bytes: Int, total: Int?, events: Int, elapsed: Double) -> String {
        var s = "\(label): \(mib(bytes))"
        if let total, total > 0 {
            let frac = min(1.0, Double(bytes) / Double(total))
            s += " / \(mib(total)) (\(Int(frac * 100))%)"
            if frac > 0.005 && elapsed > 0.3 {
                let left = elapsed / frac - elapsed
                s += "  ETA \(Int(left.rounded(.up))) s"
            }
        }
        if elapsed > 0 { s += "  \(rate(Double(events) / elapsed)) events/s" }
        return s
    }

    static func mib(_ n: Int) -> String {
        let tenths = n * 10 / (1 << 20)
        return "\(tenths / 10).\(tenths % 10) MiB"
    }

    static func rate(_ r: Double) -> String {
        if r >= 1e6 { return "\(Int(r / 1e5) / 10).\(Int(r / 1e5) % 10) M" }
        if r >= 1e3 { return "\(Int(r / 1e3)) k" }
        return "\(Int(r))"
    }

    func update(bytes: Int, events: Int) {
        let t = Progress.now()
        guard t - last >= 0.2 else { return }
        last = t
        let s = Progress.line(label: label, bytes: bytes, total: total, events: events, elapsed: t - start)
        fputs("\r\u{1b}[K" + s, stderr)
        drawn = true
    }

    /// Clears the line.
    func finish() {
        if drawn { fputs("\r\u{1b}[K", stderr) }
        drawn = false
    }
}

import ProtReplayKit

extension Pipeline {
    /// Hooks a progress line onto this pipeline (nothing when `quiet` or stderr is not a terminal).
    func showProgress(quiet: Bool, label: String) -> Progress? {
        let total = input.compression.rawValue == "none" ? input.sizeOnDisk : nil
        guard let p = Progress(quiet: quiet, total: total, label: label) else { return nil }
        progress = { bytes, events in p.update(bytes: bytes, events: events) }
        return p
    }
}
