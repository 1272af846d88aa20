import Foundation

/// Facts about the running kernel a capture needs: its arch, release, and which functions can be probed.
public enum KernelHost {
    /// `uname -m` and `uname -r`.
    public static func uname() -> (machine: String, release: String) {
        var u = utsname()
        Glibc.uname(&u)
        func str<T>(_ t: T) -> String {
            withUnsafeBytes(of: t) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        return (str(u.machine), str(u.release))
    }

    /// `uname -v` (the build string).
    public static func kernelVersionString() -> String {
        var u = utsname()
        Glibc.uname(&u)
        return withUnsafeBytes(of: u.version) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    /// This machine's arch (i686 reports as i386, aarch64 as arm64).
    public static func abi() throws -> ArchABI {
        let m = uname().machine
        guard let abi = ArchABI.named(m) else { throw CaptureError.unknownArch(m) }
        return abi
    }

    /// The functions kprobes can attach to: `available_filter_functions` (ftrace-able), or, when that file is
    /// absent (no function tracer), the text symbols of `/proc/kallsyms`. Module names (`[ext4]`) and
    /// `.constprop`/`.isra` clones are kept under the plain name as well.
    public static func probeableFunctions(tracingDir: String) -> Set<String> {
        var names = Set<String>()
        if let text = readWhole(tracingDir + "/available_filter_functions") {
            for line in text.split(separator: "\n") {
                guard let name = line.split(separator: " ").first else { continue }
                names.insert(String(name))
            }
        }
        if names.isEmpty, let text = readWhole("/proc/kallsyms") {
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ", maxSplits: 3)
                guard f.count >= 3, f[1] == "t" || f[1] == "T" else { continue }
                names.insert(String(f[2].split(separator: "\t").first ?? f[2]))
            }
        }
        return names
    }

    /// A tracefs or procfs file, read to its end (they report size 0, so size-based readers get nothing).
    static func readWhole(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
