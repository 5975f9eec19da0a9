"""Model risk: a risk tier per registered model (changed only through a governed, two-person change) and
findings raised by approvers on a model or a version (a blocking one holds back approval until its
closure is accepted by someone other than its owner). The workflow's policies read both; this package
never imports the workflow."""
