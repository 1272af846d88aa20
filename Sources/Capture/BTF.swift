import Foundation

/// The parts of a kernel's BTF (`/sys/kernel/btf/vmlinux`, or a vmlinux's `.BTF` section dumped to a file) a
/// capture needs: struct member offsets and the names of the kernel's functions.
/// Format: Documentation/bpf/btf.rst (header, then the type section of `struct btf_type` records, then strings).
public struct BTF: Sendable {
    struct Member { let name: String; let bitOffset: Int }
    /// Struct name -> members (only named structs; the first definition of a name wins).
    private var structs: [String: [Member]] = [:]
    /// Unnamed struct/union members are flattened into their parent: struct id -> members (for the walk).
    private var anonymous: [Int: [Member]] = [:]
    /// Names of FUNC records: the kernel's (non-inlined) functions.
    public private(set) var functionNames: Set<String> = []

    public enum ParseError: Error, CustomStringConvertible {
        case unreadable(String), notBTF(String), truncated(String)
        public var description: String {
            switch self {
            case let .unreadable(p): return "\(p): cannot read BTF"
            case let .notBTF(p): return "\(p): not BTF (magic 0xeb9f missing)"
            case let .truncated(p): return "\(p): BTF truncated"
            }
        }
    }

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ParseError.unreadable(path) }
        try self.init(bytes: [UInt8](data), path: path)
    }

    init(bytes b: [UInt8], path: String) throws {
        guard b.count >= 24 else { throw ParseError.truncated(path) }
        let little = b[0] == 0x9f && b[1] == 0xeb
        guard little || (b[0] == 0xeb && b[1] == 0x9f) else { throw ParseError.notBTF(path) }
        func u32(_ o: Int) -> Int {
            let v = UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
            return Int(little ? v : v.byteSwapped)
        }
        let hdrLen = u32(4), typeOff = u32(8), typeLen = u32(12), strOff = u32(16), strLen = u32(20)
        let types = hdrLen + typeOff, strings = hdrLen + strOff
        guard types + typeLen <= b.count, strings + strLen <= b.count else { throw ParseError.truncated(path) }
        func name(_ off: Int) -> String {
            var e = strings + off
            while e < b.count && b[e] != 0 { e += 1 }
            return String(decoding: b[(strings + off)..<e], as: UTF8.self)
        }
        // Pass 1: every record, with its members (struct/union) and the type it refers to.
        struct Raw { var kind: Int; var name: String; var members: [(String, Int, Int)]; var type: Int }
        var raws: [Raw] = [Raw(kind: 0, name: "void", members: [], type: 0)]
        var o = types
        let end = types + typeLen
        while o + 12 <= end {
            let nameOff = u32(o), info = u32(o + 4), sizeOrType = u32(o + 8)
            let vlen = info & 0xffff, kind = (info >> 24) & 0x1f, kindFlag = (info >> 31) & 1
            o += 12
            var members: [(String, Int, Int)] = []
            switch kind {
            case 1, 14, 17: o += 4                                   // INT, VAR, DECL_TAG
            case 3: o += 12                                          // ARRAY
            case 4, 5:                                               // STRUCT, UNION
                for i in 0..<vlen {
                    let m = o + 12 * i
                    let off = u32(m + 8)
                    members.append((name(u32(m)), u32(m + 4), kindFlag == 1 ? off & 0xffffff : off))
                }
                o += 12 * vlen
            case 6: o += 8 * vlen                                    // ENUM
            case 13: o += 8 * vlen                                   // FUNC_PROTO
            case 15: o += 12 * vlen                                  // DATASEC
            case 19: o += 12 * vlen                                  // ENUM64
            default: break                                           // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
            }
            guard o <= end else { throw ParseError.truncated(path) }
            raws.append(Raw(kind: kind, name: name(nameOff), members: members, type: sizeOrType))
        }
        for r in raws where r.kind == 12 { functionNames.insert(r.name) }
        // Pass 2: named structs with anonymous struct/union members flattened (struct folio is one big union).
        func flatten(_ id: Int, base: Int, depth: Int) -> [Member] {
            guard depth < 8, id < raws.count else { return [] }
            var out: [Member] = []
            for (n, t, off) in raws[id].members {
                if n.isEmpty {
                    var tid = t
                    while tid < raws.count, [8, 9, 10, 11, 18].contains(raws[tid].kind) { tid = raws[tid].type }
                    if tid < raws.count, raws[tid].kind == 4 || raws[tid].kind == 5 {
                        out += flatten(tid, base: base + off, depth: depth + 1)
                    }
                } else {
                    out.append(Member(name: n, bitOffset: base + off))
                }
            }
            return out
        }
        for (id, r) in raws.enumerated() where r.kind == 4 && !r.name.isEmpty && structs[r.name] == nil && !r.members.isEmpty {
            structs[r.name] = flatten(id, base: 0, depth: 0)
        }
    }

    /// Byte offset of `member` in `struct type` (members of anonymous structs/unions included).
    public func offset(of member: String, in type: String) -> Int? {
        structs[type]?.first { $0.name == member }.map { $0.bitOffset / 8 }
    }

    /// The offsets of `members` this BTF has.
    public func structOffsets(for members: [StructMember]) -> StructOffsets {
        var s = StructOffsets()
        for m in members { if let o = offset(of: m.member, in: m.type) { s.byMember[m.type + "." + m.member] = o } }
        return s
    }
}
