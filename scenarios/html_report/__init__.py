"""The self-contained HTML report a results folder gets (``report.html``).

One module per report kind (``run_page``, ``market_page``, ``sweep_page``, ``seeds_page``) on shared
helpers: ``page`` (the HTML document, tables, captions, the inlined Bokeh library),
``figures`` (figure styling, waterfall, heat map) and ``palette`` (colour-blind-safe colours).
"""

from scenarios.html_report.market_page import write_market_report
from scenarios.html_report.run_page import write_run_report
from scenarios.html_report.seeds_page import write_seeds_report
from scenarios.html_report.sweep_page import write_sweep_report

REPORT_NAME = "report.html"

__all__ = ["REPORT_NAME", "write_market_report", "write_run_report", "write_seeds_report",
           "write_sweep_report"]
