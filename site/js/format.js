// How numbers, times and OCPP/OCPI codes read on the site.

const numbers = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const twoDecimals = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayAndClock = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

/** 22000 → "22 kW", 7400 → "7.4 kW". */
export function power(watts) {
  if (watts === null || watts === undefined) return "–";
  return `${numbers.format(watts / 1000)} kW`;
}

/** 3500 → "3.50 kWh". */
export function energy(wattHours) {
  return `${twoDecimals.format((wattHours || 0) / 1000)} kWh`;
}

/** 850 → "850 m", 1234 → "1.2 km". */
export function distance(metres) {
  if (metres < 1000) return `${Math.round(metres)} m`;
  return `${numbers.format(metres / 1000)} km`;
}

/** 725 → "0:12:05". */
export function duration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  return `${hours}:${String(minutes).padStart(2, "0")}:${String(rest).padStart(2, "0")}`;
}

/** 725 → "PT12M5S", for `<time datetime>`. */
export function isoDuration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  return `PT${Math.floor(total / 3600)}H${Math.floor((total % 3600) / 60)}M${total % 60}S`;
}

/** A short local time, "18:20". */
export function timeOfDay(iso) {
  return clock.format(new Date(iso));
}

/** "4 Dec 2026, 18:20". */
export function dateTime(iso) {
  return dayAndClock.format(new Date(iso));
}

const CONNECTORS = {
  IEC_62196_T1: "Type 1",
  IEC_62196_T1_COMBO: "CCS1",
  IEC_62196_T2: "Type 2",
  IEC_62196_T2_COMBO: "CCS2",
  IEC_62196_T3A: "Type 3A",
  IEC_62196_T3C: "Type 3C",
  CHADEMO: "CHAdeMO",
  CHAOJI: "ChaoJi",
  GBT_AC: "GB/T AC",
  GBT_DC: "GB/T DC",
  DOMESTIC_E: "Type E socket",
  DOMESTIC_F: "Schuko",
  DOMESTIC_G: "Type G socket",
  TESLA_R: "Tesla Roadster",
  TESLA_S: "Tesla",
  NEMA_5_20: "NEMA 5-20",
};

/** The connector types drivers pick from in the search. */
export const SEARCHABLE_CONNECTORS = [
  "IEC_62196_T2",
  "IEC_62196_T2_COMBO",
  "CHADEMO",
  "IEC_62196_T1",
  "IEC_62196_T1_COMBO",
  "DOMESTIC_F",
];

/** "IEC_62196_T2" → "Type 2". */
export function connectorName(standard) {
  return CONNECTORS[standard] || String(standard || "").replaceAll("_", " ");
}

/** One connector's facts: ["Type 2 socket", "AC three-phase", "22 kW"]. */
export function connectorFacts(connector) {
  const kind = connector.format === "CABLE" ? "cable" : "socket";
  const current =
    {
      AC_1_PHASE: "AC single-phase",
      AC_2_PHASE: "AC two-phase",
      AC_2_PHASE_SPLIT: "AC split-phase",
      AC_3_PHASE: "AC three-phase",
      DC: "DC",
    }[connector.power_type] || connector.power_type;
  const parts = [`${connectorName(connector.standard)} ${kind}`, current];
  if (connector.max_power_w) parts.push(power(connector.max_power_w));
  return parts.filter(Boolean);
}

/**
 * How an EVSE's status reads, with its tone: the word is always shown, the colour only
 * supports it.
 */
export function evseStatus(evse, online) {
  if (!online) return { label: "Offline", tone: "idle" };
  const statuses = {
    Available: { label: "Available", tone: "ok" },
    Preparing: { label: "Preparing", tone: "warn" },
    Charging: { label: "Charging", tone: "busy" },
    SuspendedEV: { label: "Paused by the vehicle", tone: "busy" },
    SuspendedEVSE: { label: "Paused by the charger", tone: "busy" },
    Finishing: { label: "Finishing", tone: "warn" },
    Reserved: { label: "Reserved", tone: "warn" },
    Unavailable: { label: "Unavailable", tone: "idle" },
    Faulted: { label: "Out of order", tone: "bad" },
  };
  return statuses[evse.status] || { label: "Status unknown", tone: "idle" };
}

/** An OCPP stop reason as a driver reads it. */
export function stopReason(reason) {
  return (
    {
      Remote: "Stopped in the app",
      Local: "Stopped at the charger",
      EVDisconnected: "Vehicle unplugged",
      DeAuthorized: "Card not accepted",
      EmergencyStop: "Emergency stop",
      HardReset: "Charger restarted",
      SoftReset: "Charger restarted",
      PowerLoss: "Power cut",
      Reboot: "Charger restarted",
      UnlockCommand: "Connector unlocked",
      Other: "Ended",
    }[reason] || "Ended"
  );
}

const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/** OCPI opening hours as lines: ["Open 24/7"] or ["Monday 08:00–20:00", …]. */
export function openingHours(hours) {
  if (!hours) return ["Not published"];
  if (hours.twentyfourseven) return ["Open 24 hours, every day"];
  const periods = hours.regular_hours || [];
  if (periods.length === 0) return ["Not published"];
  return periods.map(
    (period) =>
      `${WEEKDAYS[period.weekday - 1] || `Day ${period.weekday}`} ${period.period_begin}–${period.period_end}`,
  );
}
