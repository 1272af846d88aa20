"""docs/fleet.md "Spark: pipe", run in Spark's local mode: the trace paths of TRACES_TXT go through
report-one.sh, one partition per path, and the driver merges the collected report paths with
`protreplay merge`.

    spark-submit --master 'local[2]' spark_pipe.py PROTREPLAY TRACES_TXT REPORT_DIR WRAPPER MERGED_JSON
"""
import subprocess
import sys

from pyspark import SparkContext


def main() -> None:
    protreplay, traces_txt, report_dir, wrapper, merged_json = sys.argv[1:6]
    with open(traces_txt) as f:
        n = sum(1 for line in f if line.strip())
    sc = SparkContext(appName="protreplay-fleet")
    sc.setLogLevel("WARN")
    try:
        paths = sc.textFile(traces_txt, minPartitions=n)
        env = {"PROTREPLAY": protreplay, "REPORT_DIR": report_dir}
        reports = paths.pipe(wrapper, env=env, checkCode=True).collect()
        print(f"spark: {paths.getNumPartitions()} partitions, {len(reports)} reports", file=sys.stderr)
    finally:
        sc.stop()
    if len(reports) != n or len(set(reports)) != n:
        sys.exit(f"spark: expected {n} distinct reports, collected {reports}")
    # On the driver, over the collected paths (in the order collect() gave them: the partitions' order).
    subprocess.run([protreplay, "merge", *reports, "-o", merged_json], check=True)
    with open(merged_json + ".inputs", "w") as f:
        f.write("\n".join(reports) + "\n")


if __name__ == "__main__":
    main()
