"""The paper's evaluation as one report: Table 2 rows over test-split seeds
(:mod:`~gifemo.paper.reproduce`), Tables 1/2/4 and ``report.md`` (:mod:`~gifemo.paper.report`),
Figures 6–10 (:mod:`~gifemo.paper.figures`) and the Table 4 SVM baseline
(:mod:`~gifemo.paper.svm_baseline`)."""
