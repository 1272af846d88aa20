import ArgumentParser
import TraceIngest
import EventModel
import Replay
import Models

/// `--model` and the options of each protection model (shared by `report` and, later, `compare`).
struct ModelSelection: ParsableArguments {
    @Option(name: .long, help: "Protection model(s): highmem, pks, s390pv, directmap, a comma-separated list, or auto (every model whose events are in the trace).")
    var model: String = "highmem"

    @Option(name: .long, help: "pks: PK fault handling: strict, relaxed, silent, off.")
    var mode: String = "relaxed"

    @Option(name: .long, help: "pks: global kmap() design: unsupported (A0, V10 as posted), global-unprotect (A1), flag-fault (A2).")
    var kmapGlobal: String = "unsupported"

    @Option(name: .long, help: "pks flag-fault: when a task's temporary unprotect ends: sched-out or return-to-user.")
    var contextEnd: String = "sched-out"

    @Option(name: .long, help: "Protected frames: pfn ranges (0x100000-0x13ffff,...), kmapped (pks default) or touched (s390pv default).")
    var protect: String?

    @Option(name: .long, help: "pks: an access this many ns after the context's last revoke is after_revoke.")
    var afterRevokeNs: UInt64 = 10_000

    @Option(name: .long, help: "s390pv: FOLL_PIN value for decoding gup_put_folio flags: 0x40000 (up to v6.2) or 0x80000 (v6.3+).")
    var follPin: String = "0x40000"

    static let all = ["highmem", "pks", "s390pv", "directmap"]

    var isAuto: Bool { model == "auto" }

    var names: [String] {
        isAuto ? ModelSelection.all : model.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func validate() throws {
        for n in names where !ModelSelection.all.contains(n) {
            throw ValidationError("unknown model '\(n)'; available: \(ModelSelection.all.joined(separator: ", ")), auto")
        }
        guard PKSModel.FaultMode(rawValue: mode) != nil else { throw ValidationError("--mode must be strict, relaxed, silent or off") }
        guard PKSModel.KmapGlobal(rawValue: kmapGlobal) != nil else {
            throw ValidationError("--kmap-global must be unsupported, global-unprotect or flag-fault")
        }
        guard PKSModel.ContextEnd(rawValue: contextEnd) != nil else { throw ValidationError("--context-end must be sched-out or return-to-user") }
        if let p = protect, ProtectedFrames.parse(p) == nil {
            throw ValidationError("--protect: '\(p)' is not kmapped, touched, or pfn ranges like 0x100000-0x13ffff,0x200000")
        }
        guard parsedFollPin != nil else { throw ValidationError("--foll-pin must be a hex number") }
    }

    var parsedFollPin: UInt64? {
        var t = Substring(follPin)
        if t.hasPrefix("0x") { t = t.dropFirst(2) }
        return UInt64(t, radix: 16)
    }

    func makeModels(resolver: AddressResolver, symbols: StringTable) throws -> [ProtectionModel] {
        try validate()
        let ranges = protect.flatMap(ProtectedFrames.parse)
        return names.map { name -> ProtectionModel in
            switch name {
            case "pks":
                return PKSModel(resolver: resolver, mode: PKSModel.FaultMode(rawValue: mode)!,
                                kmapGlobal: PKSModel.KmapGlobal(rawValue: kmapGlobal)!,
                                contextEnd: PKSModel.ContextEnd(rawValue: contextEnd)!,
                                protected: ranges ?? .kmapped, afterRevokeNs: afterRevokeNs)
            case "s390pv":
                return S390PVModel(resolver: resolver, protected: ranges ?? .touched, follPin: parsedFollPin ?? 0x40000, symbols: symbols)
            case "directmap":
                return DirectMapModel(resolver: resolver, symbols: symbols)
            default:
                return HighmemModel(resolver: resolver)
            }
        }
    }
}
