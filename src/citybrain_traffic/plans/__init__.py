"""Timing plans: the plan type, its safety validation, and SUMO, JSON and UTDF files in and out."""

from .files import read_plans
from .jsonfile import (
    PLAN_FORMAT_VERSION,
    plan_from_dict,
    plan_to_dict,
    plans_json_default,
    read_json,
    write_json,
)
from .plan import TimingPlan, plans_from_network
from .tllogic import read_tl_logics, tl_logics_xml, write_tl_logics
from .utdf import utdf_text, write_utdf
from .validate import (
    MAX_GREEN_S,
    PLAN_KINDS,
    green_ceiling,
    validate,
    validate_all,
    validity_time,
    violations,
    with_clearances_of,
)

__all__ = [
    "MAX_GREEN_S",
    "PLAN_FORMAT_VERSION",
    "PLAN_KINDS",
    "TimingPlan",
    "green_ceiling",
    "plan_from_dict",
    "plan_to_dict",
    "plans_from_network",
    "plans_json_default",
    "read_json",
    "read_plans",
    "read_tl_logics",
    "tl_logics_xml",
    "utdf_text",
    "validate",
    "validate_all",
    "validity_time",
    "violations",
    "with_clearances_of",
    "write_json",
    "write_tl_logics",
    "write_utdf",
]
