import XCTest
@testable import Models

/// `--model` with options, and the `--config` strings of a what-if comparison, through the registry.
final class ModelConfigurationTests: XCTestCase {
    let base = ModelConfiguration()

    func testConfigStrings() throws {
        // `strict` is a value only pks's `mode` takes: mode=strict, and since the base (highmem) lacks pks, pks runs.
        let s = try ModelConfiguration.parse(config: "strict", base: base)
        XCTAssertEqual(s.model, "pks")
        XCTAssertEqual(s.options["mode"], "strict")
        let t = try ModelConfiguration.parse(config: "model=highmem", base: base)
        XCTAssertEqual(t.model, "highmem")
        let u = try ModelConfiguration.parse(config: "model=pks,kmap-global=global-unprotect,context-end=return-to-user", base: base)
        XCTAssertEqual(u.options["kmap-global"], "global-unprotect")
        XCTAssertEqual(u.options["context-end"], "return-to-user")
        XCTAssertThrowsError(try ModelConfiguration.parse(config: "mode=loose", base: base)) {
            XCTAssertEqual("\($0)", "--config 'mode=loose': --mode must be strict, relaxed, silent or off")
        }
        XCTAssertThrowsError(try ModelConfiguration.parse(config: "colour=red", base: base))
        // `protect` belongs to pks and s390pv: it selects neither.
        XCTAssertEqual(try ModelConfiguration.parse(config: "protect=0x10-0x20", base: base).model, "highmem")
    }

    func testEveryModelIsBuiltWithItsDefaults() throws {
        XCTAssertEqual(ModelRegistry.names, ["highmem", "pks", "s390pv", "directmap"])
        let c = ModelConfiguration(model: "auto")
        try c.validate()
        XCTAssertThrowsError(try ModelConfiguration(model: "highmem,nosuch").validate()) {
            XCTAssertEqual("\($0)", "unknown model 'nosuch'; available: highmem, pks, s390pv, directmap, auto")
        }
        XCTAssertThrowsError(try ModelConfiguration(options: ["protect": "x"]).validate())
    }
}
