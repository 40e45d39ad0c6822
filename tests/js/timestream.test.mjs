// The main Timestream flows through the AWS SDK for JavaScript v3, unchanged: a custom endpoint
// (which turns endpoint discovery off), region us-east-1 and dummy credentials.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import {
  TimestreamWriteClient,
  CreateDatabaseCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeDatabaseCommand,
  DescribeEndpointsCommand,
  DescribeTableCommand,
  ListDatabasesCommand,
  ListTablesCommand,
  ListTagsForResourceCommand,
  RejectedRecordsException,
  ResourceNotFoundException,
  ConflictException,
  TagResourceCommand,
  UpdateTableCommand,
  WriteRecordsCommand,
} from "@aws-sdk/client-timestream-write";
import {
  TimestreamQueryClient,
  CancelQueryCommand,
  CreateScheduledQueryCommand,
  DeleteScheduledQueryCommand,
  DescribeScheduledQueryCommand,
  ExecuteScheduledQueryCommand,
  ListScheduledQueriesCommand,
  ResourceNotFoundException as QueryResourceNotFoundException,
  PrepareQueryCommand,
  QueryCommand,
  ValidationException,
  paginateQuery,
} from "@aws-sdk/client-timestream-query";

import { startServer } from "./server.mjs";

let server;
let write;
let query;
const DB = "jsdb";

function clientConfig(url) {
  return {
    endpoint: url,
    region: "us-east-1",
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
    maxAttempts: 1,
  };
}

function record(host, value, timeMs, extra = {}) {
  return {
    Dimensions: [{ Name: "host", Value: host }],
    MeasureName: "cpu",
    MeasureValue: String(value),
    Time: String(timeMs),
    ...extra,
  };
}

before(async () => {
  server = await startServer();
  write = new TimestreamWriteClient(clientConfig(server.url));
  query = new TimestreamQueryClient(clientConfig(server.url));
});

after(async () => {
  write?.destroy();
  query?.destroy();
  await server?.stop();
});

describe("Timestream API with the AWS SDK for JavaScript v3", () => {
  it("creates, describes and lists databases and tables", async () => {
    const db = await write.send(new CreateDatabaseCommand({ DatabaseName: DB, Tags: [{ Key: "sdk", Value: "js" }] }));
    assert.equal(db.Database.Arn, `arn:aws:timestream:us-east-1:000000000000:database/${DB}`);
    assert.equal(db.Database.TableCount, 0);
    assert.ok(db.Database.CreationTime instanceof Date);
    await assert.rejects(write.send(new CreateDatabaseCommand({ DatabaseName: DB })), ConflictException);

    const table = await write.send(
      new CreateTableCommand({
        DatabaseName: DB,
        TableName: "cpu",
        RetentionProperties: { MemoryStoreRetentionPeriodInHours: 24, MagneticStoreRetentionPeriodInDays: 7 },
        MagneticStoreWriteProperties: { EnableMagneticStoreWrites: true },
      }),
    );
    assert.equal(table.Table.TableStatus, "ACTIVE");
    assert.deepEqual(table.Table.RetentionProperties, {
      MemoryStoreRetentionPeriodInHours: 24,
      MagneticStoreRetentionPeriodInDays: 7,
    });
    const described = await write.send(new DescribeTableCommand({ DatabaseName: DB, TableName: "cpu" }));
    assert.deepEqual(described.Table.Schema, { CompositePartitionKey: [{ Type: "MEASURE" }] });
    const updated = await write.send(
      new UpdateTableCommand({
        DatabaseName: DB,
        TableName: "cpu",
        RetentionProperties: { MemoryStoreRetentionPeriodInHours: 48, MagneticStoreRetentionPeriodInDays: 7 },
      }),
    );
    assert.equal(updated.Table.RetentionProperties.MemoryStoreRetentionPeriodInHours, 48);

    const dbs = await write.send(new ListDatabasesCommand({ MaxResults: 20 }));
    assert.ok(dbs.Databases.some((d) => d.DatabaseName === DB));
    const tables = await write.send(new ListTablesCommand({ DatabaseName: DB }));
    assert.deepEqual(tables.Tables.map((t) => t.TableName), ["cpu"]);
    const desc = await write.send(new DescribeDatabaseCommand({ DatabaseName: DB }));
    assert.equal(desc.Database.TableCount, 1);

    await write.send(new TagResourceCommand({ ResourceARN: table.Table.Arn, Tags: [{ Key: "team", Value: "a" }] }));
    const tags = await write.send(new ListTagsForResourceCommand({ ResourceARN: table.Table.Arn }));
    assert.deepEqual(tags.Tags, [{ Key: "team", Value: "a" }]);
    await assert.rejects(
      write.send(new DescribeTableCommand({ DatabaseName: DB, TableName: "nope" })),
      ResourceNotFoundException,
    );
  });

  it("answers DescribeEndpoints on both clients", async () => {
    for (const client of [write, query]) {
      const out = await client.send(new DescribeEndpointsCommand({}));
      // This SDK replaces only the hostname with the Address (keeping scheme and port): the
      // bare host (other SDKs get `http://host:port`).
      const host = server.address.replace(/:\d+$/, "");
      assert.deepEqual(out.Endpoints, [{ Address: host, CachePeriodInMinutes: 1440 }]);
    }
  });

  it("writes records, with partial success and versions", async () => {
    const now = Date.now();
    const out = await write.send(
      new WriteRecordsCommand({
        DatabaseName: DB,
        TableName: "cpu",
        CommonAttributes: { Dimensions: [{ Name: "region", Value: "eu" }] },
        Records: [
          record("h1", 1.5, now),
          record("h2", 7, now, { MeasureValueType: "BIGINT", MeasureName: "count" }),
          {
            Dimensions: [{ Name: "host", Value: "h3" }],
            MeasureName: "stats",
            MeasureValueType: "MULTI",
            Time: String(now),
            MeasureValues: [
              { Name: "load", Value: "0.25", Type: "DOUBLE" },
              { Name: "ok", Value: "true", Type: "BOOLEAN" },
            ],
          },
          record("old", 1, now - 3 * 86_400_000 + 60_000),
        ],
      }),
    );
    assert.deepEqual(out.RecordsIngested, { Total: 4, MemoryStore: 3, MagneticStore: 1 });

    const err = await write
      .send(
        new WriteRecordsCommand({
          DatabaseName: DB,
          TableName: "cpu",
          CommonAttributes: { Dimensions: [{ Name: "region", Value: "eu" }] },
          Records: [record("h1", 2.5, now), record("h4", 1, now), record("h5", 1, now - 30 * 86_400_000)],
        }),
      )
      .then(
        () => assert.fail("expected RejectedRecordsException"),
        (e) => e,
      );
    assert.ok(err instanceof RejectedRecordsException, String(err));
    assert.equal(err.$metadata.httpStatusCode, 419);
    assert.deepEqual(
      err.RejectedRecords.map((r) => [r.RecordIndex, r.ExistingVersion]),
      [
        [0, 1],
        [2, undefined],
      ],
    );
    assert.match(err.RejectedRecords[0].Reason, /^A record already exists with the same time/);
    assert.match(err.RejectedRecords[1].Reason, /of the data ingestion window\.$/);

    // A higher version replaces the value.
    await write.send(
      new WriteRecordsCommand({
        DatabaseName: DB,
        TableName: "cpu",
        CommonAttributes: { Dimensions: [{ Name: "region", Value: "eu" }] },
        Records: [record("h1", 2.5, now, { Version: 2 })],
      }),
    );
    const res = await query.send(
      new QueryCommand({ QueryString: `SELECT "measure_value::double" FROM "${DB}"."cpu" WHERE host = 'h1'` }),
    );
    assert.deepEqual(res.Rows, [{ Data: [{ ScalarValue: "2.5" }] }]);
  });

  it("queries with ColumnInfo, NULLs and pagination", async () => {
    const t0 = Date.now() - 600_000;
    for (let batch = 0; batch < 30; batch++) {
      await write.send(
        new WriteRecordsCommand({
          DatabaseName: DB,
          TableName: "cpu",
          CommonAttributes: { MeasureName: "page", Time: String(t0 + batch) },
          Records: Array.from({ length: 100 }, (_, i) => ({
            Dimensions: [{ Name: "host", Value: `p${String(i).padStart(3, "0")}` }],
            MeasureValue: String(batch * 100 + i),
          })),
        }),
      );
    }
    const sql = `SELECT host, time, "measure_value::double" AS v, region FROM "${DB}"."cpu" WHERE measure_name = 'page' ORDER BY time, host`;
    let rows = [];
    let pages = 0;
    let columns;
    for await (const page of paginateQuery({ client: query, pageSize: 400 }, { QueryString: sql })) {
      pages++;
      assert.ok(page.Rows.length <= 400);
      columns = page.ColumnInfo;
      rows = rows.concat(page.Rows);
    }
    assert.equal(rows.length, 3000);
    assert.ok(pages >= 8);
    assert.deepEqual(columns, [
      { Name: "host", Type: { ScalarType: "VARCHAR" } },
      { Name: "time", Type: { ScalarType: "TIMESTAMP" } },
      { Name: "v", Type: { ScalarType: "DOUBLE" } },
      { Name: "region", Type: { ScalarType: "VARCHAR" } },
    ]);
    assert.deepEqual(rows[0].Data[3], { NullValue: true });
    assert.match(rows[0].Data[1].ScalarValue, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}$/);
    assert.deepEqual(
      rows.map((r) => Number(r.Data[2].ScalarValue)),
      Array.from({ length: 3000 }, (_, i) => i),
    );

    const first = await query.send(new QueryCommand({ QueryString: sql, MaxRows: 10 }));
    assert.ok(first.NextToken);
    const cancel = await query.send(new CancelQueryCommand({ QueryId: first.QueryId }));
    assert.ok(cancel.CancellationMessage);
    await assert.rejects(query.send(new QueryCommand({ QueryString: "SELEC 1" })), ValidationException);

    const prepared = await query.send(new PrepareQueryCommand({ QueryString: sql, ValidateOnly: true }));
    assert.deepEqual(
      prepared.Columns.map((c) => c.Name),
      ["host", "time", "v", "region"],
    );
  });

  it("creates, executes and describes a scheduled query", async () => {
    await write.send(new CreateTableCommand({ DatabaseName: DB, TableName: "rollup" }));
    // The 3,000 'page' records of the previous test, rolled up per host and minute.
    const sql =
      `SELECT host, bin(time, 1m) AS minute, count(*) AS n FROM "${DB}"."cpu" ` +
      `WHERE time BETWEEN @scheduled_runtime - 1h AND @scheduled_runtime AND measure_name = 'page' ` +
      `GROUP BY host, bin(time, 1m)`;
    const created = await query.send(
      new CreateScheduledQueryCommand({
        Name: "js-rollup",
        QueryString: sql,
        ScheduleConfiguration: { ScheduleExpression: "rate(1 day)" },
        NotificationConfiguration: { SnsConfiguration: { TopicArn: "arn:aws:sns:us-east-1:000000000000:js" } },
        ScheduledQueryExecutionRoleArn: "arn:aws:iam::000000000000:role/js",
        ErrorReportConfiguration: { S3Configuration: { BucketName: "js-reports" } },
        TargetConfiguration: {
          TimestreamConfiguration: {
            DatabaseName: DB,
            TableName: "rollup",
            TimeColumn: "minute",
            DimensionMappings: [{ Name: "host", DimensionValueType: "VARCHAR" }],
            MultiMeasureMappings: {
              TargetMultiMeasureName: "pages",
              MultiMeasureAttributeMappings: [{ SourceColumn: "n", MeasureValueType: "BIGINT" }],
            },
          },
        },
      }),
    );
    const arn = created.Arn;
    assert.match(arn, /^arn:aws:timestream:us-east-1:000000000000:scheduled-query\/js-rollup-/);

    const before = await query.send(new DescribeScheduledQueryCommand({ ScheduledQueryArn: arn }));
    assert.equal(before.ScheduledQuery.Name, "js-rollup");
    assert.equal(before.ScheduledQuery.State, "ENABLED");
    assert.equal(before.ScheduledQuery.ScheduleConfiguration.ScheduleExpression, "rate(1 day)");
    assert.ok(before.ScheduledQuery.NextInvocationTime instanceof Date);
    assert.equal(before.ScheduledQuery.LastRunSummary, undefined);
    assert.equal(before.ScheduledQuery.TargetConfiguration.TimestreamConfiguration.TableName, "rollup");

    const invocation = new Date(Math.floor(Date.now() / 1000) * 1000);
    await query.send(new ExecuteScheduledQueryCommand({ ScheduledQueryArn: arn, InvocationTime: invocation }));
    let described;
    for (let i = 0; i < 120; i++) {
      described = await query.send(new DescribeScheduledQueryCommand({ ScheduledQueryArn: arn }));
      if (described.ScheduledQuery.LastRunSummary) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const run = described.ScheduledQuery.LastRunSummary;
    assert.ok(run, "the manual run finished within 30 s");
    assert.equal(run.RunStatus, "MANUAL_TRIGGER_SUCCESS", run.FailureReason);
    assert.equal(run.InvocationTime.getTime(), invocation.getTime());
    assert.ok(run.TriggerTime instanceof Date);
    assert.ok(run.ExecutionStats.QueryResultRows >= 100);
    assert.equal(run.ExecutionStats.RecordsIngested, run.ExecutionStats.QueryResultRows);

    const total = await query.send(
      new QueryCommand({ QueryString: `SELECT sum(n), count(DISTINCT host) FROM "${DB}"."rollup"` }),
    );
    assert.deepEqual(total.Rows, [{ Data: [{ ScalarValue: "3000" }, { ScalarValue: "100" }] }]);

    const listed = await query.send(new ListScheduledQueriesCommand({}));
    assert.deepEqual(
      listed.ScheduledQueries.map((q) => [q.Arn, q.State]),
      [[arn, "ENABLED"]],
    );
    await query.send(new DeleteScheduledQueryCommand({ ScheduledQueryArn: arn }));
    await assert.rejects(
      query.send(new DescribeScheduledQueryCommand({ ScheduledQueryArn: arn })),
      QueryResourceNotFoundException,
    );
  });

  it("deletes a table", async () => {
    await write.send(new DeleteTableCommand({ DatabaseName: DB, TableName: "cpu" }));
    await assert.rejects(
      write.send(new DescribeTableCommand({ DatabaseName: DB, TableName: "cpu" })),
      ResourceNotFoundException,
    );
  });
});
