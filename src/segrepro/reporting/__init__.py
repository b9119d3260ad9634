"""Pipeline reports: result tables, claims, figures and the papermill/nbconvert HTML report."""
