import XCTest
@testable import TraceIngest

final class FieldsTests: XCTestCase {
    func with<T>(_ s: String, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        var a = Array(s.utf8)
        return a.withUnsafeMutableBytes { body(UnsafeRawBufferPointer($0)) }
    }

    func testIntegerForms() {
        XCTAssertEqual(with("0x1f") { Fields.parseInteger($0) }, 31)
        XCTAssertEqual(with("31") { Fields.parseInteger($0) }, 31)
        XCTAssertEqual(with("-1") { Fields.parseInteger($0) }, UInt64.max)
        XCTAssertNil(with("0x") { Fields.parseInteger($0) })
        XCTAssertNil(with("99999999999999999999999") { Fields.parseInteger($0) })
        XCTAssertNil(with("0x1ffffffffffffffff") { Fields.parseInteger($0) })
        XCTAssertNil(with("12ab") { Fields.parseInteger($0) })
    }

    func testFieldLookupNeedsWordBoundary() {
        let p = "(get_user_pages_fast+0x0/0x30) start=0x7fcb nr_pages=64 gup_flags=0x0 pages=0xffff8880060e1200"
        XCTAssertEqual(with(p) { Fields.integer("pages", in: $0) }, 0xffff8880060e1200)
        XCTAssertEqual(with(p) { Fields.integer("nr_pages", in: $0) }, 64)
        XCTAssertEqual(with(p) { Fields.integer("start", in: $0) }, 0x7fcb)
        XCTAssertNil(with(p) { Fields.integer("ages", in: $0) })
    }

    func testProbeLocation() {
        with("(__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788") { p in
            let loc = Fields.probeLocation(p)!
            XCTAssertEqual(String(decoding: loc.function, as: UTF8.self), "__kmap_local_page_prot")
            XCTAssertNil(loc.caller)
            XCTAssertFalse(loc.isReturn)
        }
        with("(__iov_iter_get_pages_alloc+0xe9/0x7a0 <- get_user_pages_fast) ret=64") { p in
            let loc = Fields.probeLocation(p)!
            XCTAssertEqual(String(decoding: loc.function, as: UTF8.self), "get_user_pages_fast")
            XCTAssertEqual(String(decoding: loc.caller!, as: UTF8.self), "__iov_iter_get_pages_alloc")
            XCTAssertTrue(loc.isReturn)
        }
        with("address=0x1") { XCTAssertNil(Fields.probeLocation($0)) }
    }
}
