-- Warns when a source row was exported after as_of (plus var future_export_tolerance_hours):
-- a clock or time-zone error in the export. Staging has quarantined these rows, so they cannot
-- make stale data look fresh; fix the export (or PUSHER_AS_OF) and rebuild. Listed in
-- rejected_inputs with reason exported_in_future.
{{ config(severity='warn') }}

select source_system, source_table, source_record_id, exported_at
from {{ ref('rejected_inputs') }}
where reason = 'exported_in_future'
