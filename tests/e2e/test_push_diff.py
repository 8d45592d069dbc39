"""test_push_diff.py - differential test of abacus's Pushgateway-compatible push API against the
real Pushgateway (Debian prometheus-pushgateway, 1.5.1 when written; the facts each case pins
were observed on it). Both servers get the same request sequences; after every request the
status (exactly for 200/202/400/405, by class otherwise) and the pushed series on /metrics
(pushdiff.compare_states) must agree. Cases marked as deviations are where abacus deliberately
differs (the Pushgateway emits invalid exposition, or poisons its /metrics, or has no body
limit); their abacus side is checked against abacus's own expectation.

Runs the real binary (env ABACUS_BIN) and /usr/bin/prometheus-pushgateway (required: CI
installs it). ABACUS_PUSHDIFF_PEER=pushgateway puts a second Pushgateway in abacus's place to
check the harness itself: then every case, deviations included, must agree.
"""

import gzip
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pushdiff  # noqa: E402
from pushdiff import Case, DELETE, POST, PUT, Step, expect  # noqa: E402

G = "# TYPE m gauge\nm 1\n"
HIST_NO_INF = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 2\nh_sum 3\nh_count 2\n"
REDIRECT = ("3xx", "4xx")  # the Pushgateway's router redirects; abacus may refuse instead


def bad_body(name, body, **kw):
    """A body the Pushgateway's parser refuses: 400 and nothing changes, on a new group and on
    an existing one (no push_failure_time_seconds either)."""
    job = "/metrics/job/" + name
    return Case(name, [PUT(job, body, **kw), PUT(job, G), PUT(job, body, **kw)])


def values_case(name, values):
    body = "# TYPE v gauge\n" + "".join('v{i="%d"} %s\n' % (i, v) for i, v in enumerate(values))
    return Case(name, [PUT("/metrics/job/" + name, body)])


CASES = [
    # ---- grouping keys and paths -------------------------------------------------------------
    Case("put_job", [PUT("/metrics/job/j", G)]),
    Case("put_job_instance", [PUT("/metrics/job/j/instance/i", G)]),
    Case("put_job_labels", [PUT("/metrics/job/j/a/b/c/d", G)]),
    Case("groups_merge_into_one_family", [
        PUT("/metrics/job/j", G), PUT("/metrics/job/j/instance/i", "# TYPE m gauge\nm 2\n"),
        PUT("/metrics/job/j/a/b/c/d", "# TYPE m gauge\nm 3\n")]),
    Case("post_adds_family", [PUT("/metrics/job/j", G),
                              POST("/metrics/job/j", "# TYPE m2 counter\nm2 2\n")]),
    Case("delete_group_only", [PUT("/metrics/job/j", G), PUT("/metrics/job/j/a/b/c/d", G),
                               DELETE("/metrics/job/j/a/b/c/d"),
                               DELETE("/metrics/job/j/a/b/c/d")]),
    Case("delete_absent_202", [DELETE("/metrics/job/absent"),
                               DELETE("/metrics/job/absent/x/y")]),
    Case("delete_then_push_again", [PUT("/metrics/job/j", G), DELETE("/metrics/job/j"),
                                    POST("/metrics/job/j", G)]),
    Case("b64_job_padded", [PUT("/metrics/job@base64/Zm9vL2Jhcg==", G)]),
    Case("b64_job_unpadded_same_group", [PUT("/metrics/job@base64/Zm9vL2Jhcg", G),
                                         PUT("/metrics/job@base64/Zm9vL2Jhcg==",
                                             "# TYPE m gauge\nm 2\n")]),
    Case("b64_delete", [PUT("/metrics/job@base64/Zm9vL2Jhcg/p@base64/YS9i", G),
                        DELETE("/metrics/job@base64/Zm9vL2Jhcg==/p@base64/YS9i")]),
    Case("b64_urlsafe_alphabet", [PUT("/metrics/job/k/v@base64/Pz8-", G),
                                  PUT("/metrics/job/k/v@base64/Pz8_", G)]),
    Case("b64_std_plus_400", [PUT("/metrics/job/k/v@base64/Pz8+", G)]),
    Case("b64_std_slash_odd_400", [PUT("/metrics/job/k/v@base64/Pz8/", G)]),
    Case("b64_padding_variants", [PUT("/metrics/job/k1/a@base64/YWJj==", G),
                                  PUT("/metrics/job/k2/a@base64/YWJ", G),
                                  PUT("/metrics/job/k3/a@base64/YQ", G),
                                  PUT("/metrics/job/k4/a@base64/YQ=", G),
                                  PUT("/metrics/job/k4/a@base64/YQ==", "# TYPE m gauge\nm 2\n")]),
    Case("b64_invalid_400", [PUT("/metrics/job/k/v@base64/!!!", G),
                             PUT("/metrics/job/k/v@base64/%FF", G)]),
    Case("b64_empty_value", [PUT("/metrics/job/k/e@base64/=", G)]),
    Case("b64_empty_value_no_eq", [PUT("/metrics/job/k/e@base64/", G)]),
    Case("empty_value_trailing_slash", [PUT("/metrics/job/k/e/", G)]),
    Case("percent_encoded_at_is_base64", [PUT("/metrics/job/k/a%40base64/YQ==", G)]),
    Case("empty_instance_label", [PUT("/metrics/job/k/instance/", G)]),
    Case("trailing_slash_same_group", [PUT("/metrics/job/t/", G),
                                       PUT("/metrics/job/t", "# TYPE m gauge\nm 2\n")]),
    Case("encoded_slash_in_value_400", [PUT("/metrics/job/k/v/a%2Fb", G)]),
    Case("encoded_slash_in_job_400", [PUT("/metrics/job/a%2Fb", G)]),
    Case("empty_job_b64_400", [PUT("/metrics/job@base64/=", G), DELETE("/metrics/job@base64/=")]),
    Case("no_job_4xx", [PUT("/metrics/job", G), PUT("/metrics/job@base64/", G)]),
    Case("job_slash_redirect", [PUT("/metrics/job/", G, accept=REDIRECT)]),
    Case("unclean_paths_redirect", [PUT("/metrics/job//", G, accept=REDIRECT),
                                    PUT("/metrics//job/x", G, accept=REDIRECT),
                                    PUT("/metrics/job/x/e//y", G, accept=REDIRECT),
                                    PUT("/metrics/job/x/a/./b", G, accept=REDIRECT),
                                    PUT("/metrics/job/x/../y", G, accept=REDIRECT)]),
    Case("odd_components_400", [PUT("/metrics/job/k/a", G), PUT("/metrics/job/k/a/b/c", G),
                                DELETE("/metrics/job/k/a")]),
    Case("invalid_label_names_400", [PUT("/metrics/job/k/1a/b", G),
                                     PUT("/metrics/job/k/a-b/b", G),
                                     PUT("/metrics/job/k/:a/b", G),
                                     PUT("/metrics/job/k/__name__/b", G),
                                     PUT("/metrics/job/k/__x/b", G),
                                     PUT("/metrics/job/k/__x@base64/YQ", G)]),
    Case("job_label_in_path_ignored", [PUT("/metrics/job/k/job/x", G)]),
    Case("repeated_label_last_wins", [PUT("/metrics/job/k/a/1/a/2", G)]),
    Case("label_name_mixed_case", [PUT("/metrics/job/k/Ab_9/x", G)]),
    Case("percent_decoded_values", [PUT("/metrics/job/k/a/x%20y", G),
                                    PUT("/metrics/job/k/a/%E2%82%AC", G),
                                    PUT("/metrics/job/k/a/a+b", G)]),
    Case("query_string_ignored", [PUT("/metrics/job/k/a/b?x=1", G)]),
    Case("b64_invalid_utf8_value", [PUT("/metrics/job/k/a@base64/_w", G)],
         deviation=("the Pushgateway answers 400 but keeps a group whose label is not UTF-8, "
                    "and its /metrics then fails (500) for everyone; abacus refuses with 400 "
                    "and keeps nothing", expect(statuses=(400,))),
         cleanup=["/metrics/job/k/a@base64/_w"]),
    Case("empty_instance_vs_no_instance", [PUT("/metrics/job/x", G),
                                           PUT("/metrics/job/x/instance/", "# TYPE m gauge\nm 2\n")],
         deviation=("the Pushgateway keeps instance=\"\" and no instance as two groups that "
                    "render the same series: its /metrics fails (500) after the failed push; "
                    "abacus must keep /metrics valid (one group, or a refusal)",
                    expect(status_classes=("2xx", "4xx"))),
         cleanup=["/metrics/job/x/instance/"]),
    # ---- methods -----------------------------------------------------------------------------
    Case("get_head_patch_405", [Step("GET", "/metrics/job/k"), Step("HEAD", "/metrics/job/k"),
                                Step("PATCH", "/metrics/job/k", G)]),
    Case("put_post_200_delete_202", [PUT("/metrics/job/k", G), POST("/metrics/job/k", G),
                                     DELETE("/metrics/job/k")]),
    # ---- bodies ------------------------------------------------------------------------------
    Case("timestamp_new_group_400_failure", [PUT("/metrics/job/ts", "# TYPE m gauge\nm 1 1700000000000\n")]),
    Case("timestamp_untyped_400", [PUT("/metrics/job/ts", "m 1 1700000000000\n")]),
    Case("timestamp_existing_group_keeps_data", [
        PUT("/metrics/job/ts", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n"),
        PUT("/metrics/job/ts", "# TYPE a gauge\na 1 123\n"),
        POST("/metrics/job/ts", "# TYPE a gauge\na 1 123\n")]),
    Case("duplicate_series_400", [PUT("/metrics/job/d", "# TYPE m gauge\nm{a=\"1\"} 1\nm{a=\"1\"} 2\n")]),
    Case("duplicate_series_nolabels_400", [PUT("/metrics/job/d", "# TYPE m gauge\nm 1\nm 2\n")]),
    Case("type_conflict_other_group_400", [PUT("/metrics/job/c1", "# TYPE ct gauge\nct 1\n"),
                                           PUT("/metrics/job/c2", "# TYPE ct counter\nct 1\n"),
                                           POST("/metrics/job/c2", "ct 1\n")]),
    Case("type_change_within_group_by_put", [PUT("/metrics/job/c1", "# TYPE ct gauge\nct 1\n"),
                                             PUT("/metrics/job/c1", "# TYPE ct counter\nct 1\n")]),
    Case("same_name_two_types_in_body_400", [PUT("/metrics/job/s", "# TYPE sn gauge\nsn 1\n# TYPE sn counter\nsn{x=\"1\"} 1\n")]),
    Case("family_split_in_body", [PUT("/metrics/job/s", "# TYPE sp gauge\nsp{x=\"1\"} 1\n# TYPE other gauge\nother 1\nsp{x=\"2\"} 2\n")]),
    Case("grouping_label_overrides_body", [
        PUT("/metrics/job/o/instance/i", "# TYPE lo gauge\nlo{instance=\"other\",z=\"1\"} 1\n"),
        PUT("/metrics/job/o2/k/v", "# TYPE lo gauge\nlo{k=\"other\"} 1\n"),
        PUT("/metrics/job/o3", "# TYPE lj gauge\nlj{job=\"other\"} 1\n"),
        PUT("/metrics/job/o4", "# TYPE ie gauge\nie{instance=\"\"} 1\nie{instance=\"x\"} 2\n")]),
    Case("histogram_without_inf", [PUT("/metrics/job/h", HIST_NO_INF)],
         deviation=("abacus refuses a histogram without an le=\"+Inf\" bucket (the "
                    "Pushgateway stores it and invents +Inf = _count)",
                    expect(statuses=(400,), absent=("h",)))),
    Case("histogram_unsorted_buckets", [PUT("/metrics/job/h", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_bucket{le=\"2\"} 2\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 3\n")]),
    Case("histogram", [PUT("/metrics/job/h", "# HELP h a histogram\n# TYPE h histogram\nh_bucket{le=\"0.5\",x=\"a\"} 0\nh_bucket{le=\"1\",x=\"a\"} 1\nh_bucket{le=\"+Inf\",x=\"a\"} 2\nh_sum{x=\"a\"} 3.5\nh_count{x=\"a\"} 2\n")]),
    Case("histogram_without_count", [PUT("/metrics/job/h", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n")]),
    Case("histogram_nonmonotonic", [PUT("/metrics/job/h", "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n")]),
    Case("histogram_bad_le_400", [PUT("/metrics/job/h", "# TYPE h histogram\nh_bucket{le=\"abc\"} 1\nh_sum 1\nh_count 1\n")]),
    Case("histogram_same_le_twice", [PUT("/metrics/job/h", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")],
         deviation=("le=\"1\" and le=\"1.0\" are one bucket: the Pushgateway prints it twice "
                    "(a duplicate series); abacus refuses the body",
                    expect(statuses=(400,), absent=("h",)))),
    Case("histogram_le_in_grouping_key", [PUT("/metrics/job/h/le/5", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")],
         deviation=("the Pushgateway prints h_bucket{le=\"5\",le=\"1\"} (a label twice); abacus "
                    "refuses a grouping key that clashes with a histogram's le",
                    expect(statuses=(400,), absent=("h",)))),
    Case("summary", [PUT("/metrics/job/s", "# HELP s a summary\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.9\"} 2\ns_sum 10\ns_count 5\n")]),
    Case("summary_without_quantiles", [PUT("/metrics/job/s", "# TYPE s2 summary\ns2_sum 10\ns2_count 5\n")]),
    Case("summary_bad_quantile_400", [PUT("/metrics/job/s", "# TYPE s summary\ns{quantile=\"x\"} 1\n")]),
    values_case("nan_inf_values", ["NaN", "+Inf", "-Inf", "Inf", "inf", "Infinity", "nan"]),
    values_case("number_forms", ["1e3", "1E3", "1e+3", "1.5E-3", "-0", "+0", "+1", ".5", "1.",
                                 "4.9e-324", "1e-400", "123456789012345678901234567890", "-1.25"]),
    bad_body("value_hex_400", "# TYPE v gauge\nv 0x10\n"),
    bad_body("value_underscore_400", "# TYPE v gauge\nv 1_000\n"),
    bad_body("value_signed_nan_400", "# TYPE v gauge\nv -NaN\n"),
    bad_body("value_overflow_400", "# TYPE v gauge\nv 1e400\n"),
    Case("comments_only", [PUT("/metrics/job/e", "# just a comment\n# HELP x help\n# TYPE x gauge\n")]),
    Case("empty_put_new_group", [PUT("/metrics/job/e", "")]),
    Case("empty_post_new_group", [POST("/metrics/job/e", "")]),
    Case("empty_put_clears_group", [PUT("/metrics/job/e", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n"),
                                    PUT("/metrics/job/e", "")]),
    Case("empty_post_keeps_group", [PUT("/metrics/job/e", "# TYPE a gauge\na 1\n"),
                                    POST("/metrics/job/e", "")]),
    bad_body("invalid_text_400", "this is not valid\n"),
    bad_body("invalid_label_value_400", "m{a=1} 1\n"),
    bad_body("type_after_samples_400", "m 1\n# TYPE m gauge\n"),
    bad_body("unknown_type_400", "# TYPE m gaugeX\nm 1\n"),
    bad_body("no_final_newline_400", "m 1"),
    bad_body("crlf_400", "# TYPE cr gauge\r\ncr 1\r\n"),
    bad_body("trailing_spaces_400", "# TYPE tw gauge\ntw 1   \n"),
    bad_body("bad_metric_name_400", "# TYPE x gauge\n1x 1\n"),
    bad_body("duplicate_label_name_400", "m{a=\"1\",a=\"2\"} 1\n"),
    bad_body("second_help_400", "# HELP m x\n# HELP m y\nm 1\n"),
    bad_body("invalid_utf8_label_value_400", b"# TYPE ub gauge\nub{a=\"\xff\"} 1\n"),
    Case("dunder_label_in_body_400", [PUT("/metrics/job/l", "# TYPE ld gauge\nld{__x=\"1\"} 1\n")]),
    Case("accepted_oddities", [PUT("/metrics/job/q1", "m{} 1\n"),
                               PUT("/metrics/job/q2", "# TYPE tc gauge\ntc{a=\"1\",} 1\n"),
                               PUT("/metrics/job/q3", "\n# TYPE bl gauge\n\nbl 1\n\n"),
                               PUT("/metrics/job/q4", "# TYPE oe gauge\noe 1\n# EOF\n")]),
    Case("label_value_escapes", [PUT("/metrics/job/l", "# TYPE le gauge\nle{a=\"x\\\"y\\\\z\\n\"} 1\n")]),
    Case("help_escapes", [PUT("/metrics/job/l", "# HELP he a\\\\b\\nc\n# TYPE he gauge\nhe 1\n")]),
    Case("counter_total_under_base_type", [PUT("/metrics/job/c", "# TYPE c counter\nc_total 1\n")]),
    Case("counter_negative", [PUT("/metrics/job/c", "# TYPE nc counter\nnc -1\n")]),
    Case("untyped", [PUT("/metrics/job/u", "u 1\nu{x=\"y\"} 2\n")]),
    Case("gzip_body", [PUT("/metrics/job/z", gzip.compress(b"# TYPE gz gauge\ngz 1\n"),
                           headers={"Content-Encoding": "gzip"})]),
    bad_body("gzip_body_not_gzip_400", b"notgzip", headers={"Content-Encoding": "gzip"}),
    bad_body("protobuf_content_type_text_body_400", G, headers={
        "Content-Type": "application/vnd.google.protobuf; "
                        "proto=io.prometheus.client.MetricFamily; encoding=delimited"}),
    Case("other_content_types_are_text", [
        PUT("/metrics/job/ct1", G, headers={"Content-Type": "text/plain; version=0.0.4"}),
        PUT("/metrics/job/ct2", G, headers={"Content-Type": "application/json"}),
        PUT("/metrics/job/ct3", G, headers={"Content-Type": "application/openmetrics-text; version=1.0.0"}),
        PUT("/metrics/job/ct4", G, headers={"Content-Type": "application/x-www-form-urlencoded"})]),
    Case("pushed_push_time_seconds_replaced", [PUT("/metrics/job/p", "# TYPE push_time_seconds gauge\npush_time_seconds 5\n"),
                                               PUT("/metrics/job/p2", "push_time_seconds 5\n")]),
    Case("pushed_push_failure_time_new_group", [PUT("/metrics/job/p", "push_failure_time_seconds 5\n")]),
    Case("pushed_push_failure_time_existing_group", [PUT("/metrics/job/p", G),
                                                     POST("/metrics/job/p", "push_failure_time_seconds 5\n")],
         push_times="labels"),  # the Pushgateway keeps the pushed 5 (untyped): a quirk
    Case("no_help", [PUT("/metrics/job/n", "# TYPE nh gauge\nnh 1\n")]),
    Case("help_kept", [PUT("/metrics/job/n", "# HELP hk the help\n# TYPE hk gauge\nhk 1\n")]),
    Case("help_conflict_between_groups", [
        PUT("/metrics/job/h1", "# HELP hh help A\n# TYPE hh gauge\nhh 1\n"),
        PUT("/metrics/job/h2", "# HELP hh help B\n# TYPE hh gauge\nhh 2\n"),
        PUT("/metrics/job/h3", "# TYPE hh gauge\nhh 3\n")],
        compare_help=False),  # the Pushgateway picks one by Go map order: random
    # ---- failure semantics -------------------------------------------------------------------
    Case("failure_then_success_keeps_failure_time", [
        PUT("/metrics/job/f", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n"),
        PUT("/metrics/job/f", "# TYPE a gauge\na 1 123\n"),
        PUT("/metrics/job/f", "garbage\n"),
        PUT("/metrics/job/f", "# TYPE a gauge\na 2\n"),
        PUT("/metrics/job/f", "")]),
    Case("failure_new_group_then_delete", [PUT("/metrics/job/f", "m 1 5\n"),
                                           DELETE("/metrics/job/f")]),
    # ---- POST semantics ----------------------------------------------------------------------
    Case("post_replaces_families_by_name", [
        PUT("/metrics/job/p", "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 2\n# TYPE b gauge\nb 1\n"),
        POST("/metrics/job/p", "# TYPE a gauge\na{x=\"3\"} 3\n# TYPE c counter\nc 1\n"),
        POST("/metrics/job/p", "# TYPE b counter\nb 7\n"),
        POST("/metrics/job/p", "# HELP c comment-only family\n# TYPE c counter\n")]),
    Case("put_replaces_all_families", [
        PUT("/metrics/job/p", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n"),
        PUT("/metrics/job/p", "# TYPE c gauge\nc 1\n")]),
    Case("post_other_group_untouched", [
        PUT("/metrics/job/p/instance/1", "# TYPE a gauge\na 1\n"),
        POST("/metrics/job/p/instance/2", "# TYPE a gauge\na 2\n"),
        PUT("/metrics/job/p/instance/2", "")]),
    # ---- sizes -------------------------------------------------------------------------------
    Case("large_body_20k_series", [PUT("/metrics/job/big", "# TYPE big gauge\n" + "".join(
        "big{id=\"%d\"} %d\n" % (i, i) for i in range(20000)))]),
    # Over server.max_request_bytes (4 MiB), under push.max_body_bytes (16 MiB): push bodies
    # have their own bound (test_push.py checks that one).
    Case("body_over_4MiB", [PUT("/metrics/job/big", "# TYPE big gauge\n" + "".join(
        "big{id=\"%d\",pad=\"%s\"} 1\n" % (i, "x" * 100) for i in range(40000)))]),
]


API_BODIES = [
    ("/metrics/job/api/instance/i1",
     "# HELP g a gauge\n# TYPE g gauge\ng{x=\"1\"} 1.5\ng{x=\"2\"} NaN\n"
     "# TYPE c counter\nc 3\nu 1e3\n"
     "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n"
     "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 10\ns_count 5\n"),
    ("/metrics/job@base64/L2E", "# TYPE g gauge\ng{x=\"3\"} 1e-7\n"),
    ("/metrics/job@base64/L2E", "g 1 1000\n"),  # refused: last_push_successful false
]


def api_shape(doc):
    """The API answer without what differs by nature: times, push time values."""
    groups = []
    for g in doc["data"]:
        out = {"labels": g["labels"], "last_push_successful": g["last_push_successful"]}
        for name, fam in g.items():
            if name in ("labels", "last_push_successful"):
                continue
            fam = dict(fam)
            fam.pop("time_stamp")
            if name in ("push_time_seconds", "push_failure_time_seconds"):
                fam["metrics"] = [dict(m, value=m["value"] != "0") for m in fam["metrics"]]
            out[name] = fam
        groups.append(out)
    return sorted(groups, key=lambda g: sorted(g["labels"].items()))


class PushDiff(unittest.TestCase):
    def test_api_agrees_with_the_pushgateway(self):
        """GET /api/v1/metrics after the same pushes: the same groups, families, types, help,
        series and values; /api/v1/status: the same shape."""
        with harness.Pushgateway() as pg, harness.Abacus() as a:
            for path, body in API_BODIES:
                self.assertEqual(pg.request("PUT", path, body=body.encode()).status,
                                 a.request("PUT", path, body=body.encode()).status, path)
            r_pg, r_a = pg.get("/api/v1/metrics"), a.get("/api/v1/metrics")
            self.assertEqual((r_pg.status, r_a.status), (200, 200))
            self.assertEqual(r_a.header("Content-Type"), "application/json")
            self.maxDiff = None
            shape = api_shape(json.loads(r_a.body))
            self.assertEqual(len(shape), 2)
            self.assertEqual(shape, api_shape(json.loads(r_pg.body)))
            s_pg, s_a = (json.loads(x.get("/api/v1/status").body) for x in (pg, a))
            self.assertEqual(s_a["status"], s_pg["status"])
            self.assertEqual(set(s_a["data"]), set(s_pg["data"]))
            self.assertEqual(set(s_a["data"]["build_information"]),
                             set(s_pg["data"]["build_information"]))


    def test_cases_agree_with_the_pushgateway(self):
        peer = os.environ.get("ABACUS_PUSHDIFF_PEER", "abacus")
        with harness.Pushgateway() as pg:
            ref = pushdiff.Side("pushgateway", pg, pushdiff.OWN_PUSHGATEWAY, strict=False)
            if peer == "pushgateway":
                with harness.Pushgateway() as pg2:
                    other = pushdiff.Side("pushgateway#2", pg2, pushdiff.OWN_PUSHGATEWAY,
                                          strict=False)
                    failures = pushdiff.run_cases(CASES, ref, other, deviations=False)
            else:
                with harness.Abacus() as a:
                    other = pushdiff.Side("abacus", a, pushdiff.OWN_ABACUS, strict=True)
                    failures = pushdiff.run_cases(CASES, ref, other)
        self.assertEqual([n for n, _ in failures], [], "cases differ (details above)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
