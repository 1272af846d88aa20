import Foundation

/// ftrace text: the instance's `trace_pipe` streamed to a temporary file, then written behind the header of the
/// instance's `trace` file with the real entry count (the text reader uses `entries-in-buffer/entries-written`
/// and `#P:`).
///
///     # entries-in-buffer/entries-written: 0/0   #P:2      (read before recording)
///     # entries-in-buffer/entries-written: 5123/5123   #P:2   (written)
final class TextSink: CaptureSink {
    let output: String
    let temp: String
    let header: [Substring]
    let pipe: Int32
    let tempFD: Int32
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var bytes = 0
    var lines = 0

    init(session: TracefsSession, output: String) throws {
        self.output = output
        temp = output + ".pipe"
        header = (session.read("trace") ?? "").split(separator: "\n", omittingEmptySubsequences: false).filter { $0.hasPrefix("#") }
        pipe = open(session.instanceDir + "/trace_pipe", O_RDONLY | O_NONBLOCK)
        guard pipe >= 0 else { throw CaptureError.tracefs("trace_pipe: \(String(cString: strerror(errno)))") }
        tempFD = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard tempFD >= 0 else { close(pipe); throw CaptureError.output("\(temp): \(String(cString: strerror(errno)))") }
    }

    /// Moves what `trace_pipe` has, at most `pollLimit` bytes per call: on a busy machine the pipe never runs
    /// dry while tracing is on, and the recording loop must get back to notice that the command ended.
    func poll() throws -> Bool {
        var moved = false
        var taken = 0
        while taken < TextSink.pollLimit {
            let n = buffer.withUnsafeMutableBytes { read(pipe, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            taken += n
            moved = true
            try buffer.withUnsafeBytes { raw in
                var off = 0
                while off < n {
                    let w = write(tempFD, raw.baseAddress! + off, n - off)
                    if w < 0 { throw CaptureError.output(String(cString: strerror(errno))) }
                    off += w
                }
            }
            for i in 0..<n where buffer[i] == UInt8(ascii: "\n") { lines += 1 }
            bytes += n
        }
        return moved
    }

    static let pollLimit = 8 << 20

    func finish() throws {
        // Tracing is off: what is left is finite.
        while try poll() {}
        close(pipe); close(tempFD)
        var head = header.map { line -> String in
            guard line.contains("entries-in-buffer/entries-written:") else { return String(line) }
            let cpus = line.range(of: "#P:").map { String(line[$0.lowerBound...]) } ?? ""
            return "# entries-in-buffer/entries-written: \(lines)/\(lines)   \(cpus)"
        }.joined(separator: "\n")
        if !head.isEmpty { head += "\n" }
        guard FileManager.default.createFile(atPath: output, contents: Data(head.utf8)),
              let out = FileHandle(forWritingAtPath: output), let body = FileHandle(forReadingAtPath: temp) else {
            throw CaptureError.output("\(output): cannot write")
        }
        out.seekToEndOfFile()
        while true {
            let chunk = body.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            out.write(chunk)
        }
        try out.close(); try body.close()
    }

    func discard() { unlink(temp) }
}
