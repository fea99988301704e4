"""Reports built from saved ``results.json`` files only (never the code that wrote them): figures, the terminal claims
table and the self-contained HTML report, with the claims counted per source (the paper's apart from extensions).

``figures`` saves figures; ``sources`` knows the claim sources and counts; ``load`` reads an output folder into the
``model``; ``table`` prints the terminal table; ``html`` renders the page.
"""
