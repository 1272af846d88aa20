import Foundation

/// Runs a program to its end and returns its exit status and output. Both pipes are read at the same
/// time (a child writing a lot to one while the other is read would otherwise block forever).
public enum ProcessRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var out: String
        public var err: String
        public var outData: Data
    }

    /// - Parameters:
    ///   - executable: a path, or a name looked up on PATH (through `/usr/bin/env`).
    ///   - stdin: bytes written to the child's standard input (then closed); nil leaves it alone.
    public static func run(_ executable: String, _ args: [String], stdin: Data? = nil,
                           environment: [String: String]? = nil, cwd: String? = nil) throws -> Result {
        let p = Process()
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if executable.contains("/") {
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = args
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [executable] + args
        }
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        if stdin != nil { p.standardInput = input }
        try p.run()
        final class Box: @unchecked Sendable { var err = Data() }
        let box = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            box.err = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        if let stdin {
            let writer = input.fileHandleForWriting
            DispatchQueue.global().async {
                writer.write(stdin)
                try? writer.close()
            }
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self),
                      err: String(decoding: box.err, as: UTF8.self), outData: o)
    }

    /// Standard output of a command that must succeed; nil if it is not installed or fails.
    public static func output(_ args: [String]) -> String? {
        guard let first = args.first, let r = try? run(first, Array(args.dropFirst())), r.status == 0 else { return nil }
        return r.out
    }
}
