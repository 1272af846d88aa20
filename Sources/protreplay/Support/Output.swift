import ArgumentParser
import ProtReplayKit
#if canImport(Glibc)
import Glibc
#endif

/// Where results and errors go, and how failures become exit statuses.
enum Output {
    static func write(_ text: String, to path: String?) throws { try ReportFiles.write(text, to: path) }

    /// Every output path given, checked before the replay starts (a usage error: exit status 2).
    static func checkWritable(_ paths: String?...) throws {
        for case let p? in paths {
            do { try ReportFiles.checkWritable(p) } catch { throw ValidationError("\(error)") }
        }
    }

    /// `--format html` with no `-o` refuses to fill a terminal with a page of HTML (a pipe or a file is fine).
    static func checkHTMLDestination(_ isHTML: Bool, output: String?) throws {
        if isHTML && output == nil && isatty(1) != 0 {
            throw ValidationError("--format html writes a whole self-contained page: give -o FILE.html (or redirect stdout)")
        }
    }

    static func fail(_ message: String) {
        var err = StandardError()
        print("protreplay: error: \(message)", to: &err)
    }

    /// Runs `body`; a usage problem (`ValidationError`, `ConfigurationError`) is reported as one, any other
    /// error as one line on stderr with exit status 2 (bad input).
    static func guarded<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as ValidationError {
            throw e
        } catch let e as ConfigurationError {
            throw ValidationError(e.description)
        } catch let e as ExitCode {
            throw e
        } catch {
            fail("\(error)")
            throw ExitCode(2)
        }
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ s: String) { fputs(s, stderr) }
}
