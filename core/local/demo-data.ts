/**
 * The demo multi-tenant dataset of `cofre local`: clinics (tenants), patients (tenant column),
 * appointments and prescriptions (children reached through foreign keys only), and a shared
 * reference table. Deterministic (no random()), a few thousand rows.
 */
import type { Connection } from '../sources/connection';
import type { TenantModel } from '../tenants/plan';
import { connectPostgres } from '../sources/postgres';

export const DEMO_TENANT_MODEL: TenantModel = {
  table: 'public.clinics',
  keyColumn: 'id',
  tenantColumn: 'clinic_id',
};

export const DEMO_TENANTS = ['clinica-sp', 'clinica-rj', 'odonto-bh', 'lab-poa'] as const;

/** Creates the tables and rows in the (empty) database of `connection`; the row count of each table. */
export async function loadDemoData(
  connection: Connection,
  options: { patientsPerTenant?: number } = {},
): Promise<Record<string, number>> {
  const perTenant = options.patientsPerTenant ?? 250;
  const client = await connectPostgres(connection, connection.database);
  try {
    await client.query(`
      CREATE TABLE public.specialties (code text PRIMARY KEY, name text NOT NULL);
      INSERT INTO public.specialties VALUES ('CLM', 'Clínica médica'), ('CAR', 'Cardiologia'), ('ODO', 'Odontologia');
      CREATE TABLE public.clinics (id text PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL);
      CREATE TABLE public.patients (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        clinic_id text NOT NULL REFERENCES public.clinics(id),
        name text NOT NULL,
        born date,
        notes jsonb NOT NULL DEFAULT '{}'
      );
      CREATE TABLE public.appointments (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        patient_id bigint NOT NULL REFERENCES public.patients(id),
        specialty text REFERENCES public.specialties(code),
        at timestamptz NOT NULL,
        summary text
      );
      CREATE TABLE public.prescriptions (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        appointment_id bigint NOT NULL REFERENCES public.appointments(id),
        drug text NOT NULL,
        dose text
      );`);
    for (const [i, tenant] of DEMO_TENANTS.entries()) {
      await client.query('INSERT INTO public.clinics VALUES ($1, $2, $3)', [
        tenant,
        `Clínica ${tenant}`,
        new Date(Date.UTC(2021 + i, i, 1)).toISOString(),
      ]);
      await client.query(
        `INSERT INTO public.patients (clinic_id, name, born, notes)
         SELECT $1, 'Paciente ' || g || ' — ' || $1, DATE '1950-01-01' + (g * 37) % 20000,
                jsonb_build_object('alergias', CASE WHEN g % 5 = 0 THEN 'penicilina' END, 'n', g)
         FROM generate_series(1, $2::int) AS g`,
        [tenant, perTenant],
      );
    }
    await client.query(`
      INSERT INTO public.appointments (patient_id, specialty, at, summary)
      SELECT p.id, (ARRAY['CLM','CAR','ODO'])[1 + (p.id + k) % 3],
             TIMESTAMPTZ '2024-01-01 08:00:00-03' + ((p.id * 7 + k) % 700) * INTERVAL '1 day',
             'Consulta ' || k || ' de ' || p.name
      FROM public.patients p, generate_series(1, 3) AS k;
      INSERT INTO public.prescriptions (appointment_id, drug, dose)
      SELECT a.id, (ARRAY['dipirona','amoxicilina','losartana'])[1 + a.id % 3], (a.id % 4 + 1) || ' x ao dia'
      FROM public.appointments a WHERE a.id % 2 = 0;
      ANALYZE;`);
    const counts: Record<string, number> = {};
    for (const table of ['specialties', 'clinics', 'patients', 'appointments', 'prescriptions']) {
      const { rows } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM public.${table}`);
      counts[`public.${table}`] = Number(rows[0]!.n);
    }
    return counts;
  } finally {
    await client.end().catch(() => undefined);
  }
}
