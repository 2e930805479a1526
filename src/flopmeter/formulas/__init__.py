"""Pure, torch-free cost formulas: functions of shapes and a few scalars -> Cost."""
